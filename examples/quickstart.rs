//! Quickstart: one task execution through its whole life, on Convex.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Starts the local Convex server (a development server backed by `convex-test`; it needs
//! Node.js and, once, `cd convex && npm ci`), then walks one execution through the storage the
//! way the durable-execution engine does: insert, claim, complete, close, read back.
//!
//! To run it against a real deployment instead, set `CONVEX_URL` and
//! `TASK_EXECUTIONS_STORAGE_AUTH_SECRET` (and `CONVEX_ADMIN_KEY` if needed). Use a development
//! deployment: the claim and close steps take the oldest eligible execution, which on a busy
//! deployment may be someone else's (the example then stops and says so).

use std::error::Error;
use std::time::{Duration, Instant};

use durable_execution_storage_convex::local_server::{
    LocalConvexServer, LocalServerOptions, RemoteDeployment,
};
use durable_execution_storage_convex::runtime::{AuthSecret, ConvexHttpClient};
use durable_execution_storage_convex::storage::{
    now_millis, GetByIdRequest, NewTaskExecution, UpdateByCloseStatusRequest, UpdateByIdRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use durable_execution_storage_convex::task_executions::{
    CloseStatus, RetryOptions, TaskExecutionFilters, TaskExecutionStatus, TaskExecutionUnset,
    TaskExecutionUpdate, TaskExecutionsStorageClient,
};
use durable_execution_storage_convex::{
    ConvexStorageOptions, ConvexTaskExecutionsStorage, TaskExecutionStorageValue,
    TaskExecutionsStorage,
};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    // Where to run: a real deployment when CONVEX_URL is set, else a local server.
    let (server, url, secret, admin_key) = match RemoteDeployment::from_env()? {
        Some(remote) => {
            println!("deployment {}", remote.url);
            (None, remote.url, remote.auth_secret, remote.admin_key)
        }
        None => {
            let secret = "quickstart-secret".to_owned();
            // Starting blocks while Node boots, so it runs off the async worker threads.
            let options = LocalServerOptions::new(secret.clone());
            let server =
                tokio::task::spawn_blocking(move || LocalConvexServer::start(options)).await??;
            println!("local server {}", server.url());
            let url = server.url().to_owned();
            (Some(server), url, secret, None)
        }
    };

    let mut http = ConvexHttpClient::new(&url)?.with_timeout(Duration::from_secs(30));
    if let Some(key) = admin_key {
        http = http.with_admin_key(key);
    }
    let client = TaskExecutionsStorageClient::new(http, AuthSecret::new(secret));
    let storage = ConvexTaskExecutionsStorage::new(client, ConvexStorageOptions::default())?;

    let outcome = walk_one_execution(&storage).await;
    if let Some(server) = server {
        server.stop();
        println!("local server stopped");
    }
    outcome
}

async fn walk_one_execution(storage: &ConvexTaskExecutionsStorage) -> Result<()> {
    // A fresh id each run, so that the example can run again on the same deployment.
    let id = format!("quickstart-{}", now_millis());

    // 1. Insert: a new execution is ready to run now.
    let new = TaskExecutionStorageValue::new_execution(
        NewTaskExecution {
            root: None,
            parent: None,
            task_id: "greet".into(),
            execution_id: id.clone(),
            is_sleeping_task: false,
            sleeping_task_unique_id: None,
            retry_options: RetryOptions {
                max_attempts: 3,
                base_delay_ms: Some(1_000),
                max_delay_ms: None,
                delay_multiplier: Some(2.0),
            },
            sleep_ms_before_run: 0,
            timeout_ms: 60_000,
            are_children_sequential: false,
            input: r#"{"name":"world"}"#.into(),
        },
        now_millis(),
    );
    storage.insert_many(vec![new.clone()]).await?;
    print_state("inserted", &new);

    // 2. Claim: an executor moves it from ready to running; expiresAt = now + timeoutMs.
    let now = now_millis();
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(
            UpdateByStatusAndStartAtLessThanRequest {
                status: TaskExecutionStatus::Ready,
                start_at_less_than: now + 1,
                update: TaskExecutionUpdate {
                    status: Some(TaskExecutionStatus::Running),
                    executor_id: Some("quickstart-executor".into()),
                    started_at: Some(now),
                    ..update(now)
                },
                update_expires_at_with_started_at: now,
                limit: 1,
            },
        )
        .await?;
    let claimed = ours(claimed, &id, "claim")?;
    print_state("claimed", &claimed);

    // 3. Complete: the task ran; record its output and make it ready to close.
    let now = now_millis();
    let completed = TaskExecutionUpdate {
        status: Some(TaskExecutionStatus::Completed),
        is_finished: Some(true),
        output: Some(r#""hello, world""#.into()),
        finished_at: Some(now),
        close_status: Some(CloseStatus::Ready),
        unset: Some(TaskExecutionUnset {
            expires_at: true,
            ..TaskExecutionUnset::default()
        }),
        ..update(now)
    };
    storage
        .update_many_by_id(vec![UpdateByIdRequest {
            execution_id: id.clone(),
            // Only if it is still ours and running: a stale executor must not complete it.
            filters: Some(TaskExecutionFilters {
                status: Some(TaskExecutionStatus::Running),
                ..TaskExecutionFilters::default()
            }),
            update: completed,
        }])
        .await?;
    print_state("completed", &read(storage, &id).await?);

    // 4. Close: a closer picks executions ready to close (last updated before the server's
    // now, hence the retry while the clocks catch up), marks them closing, then closed.
    let closing = close_ready(storage, &id).await?;
    print_state("closing", &closing);
    let now = now_millis();
    storage
        .update_many_by_id(vec![UpdateByIdRequest {
            execution_id: id.clone(),
            filters: None,
            update: TaskExecutionUpdate {
                close_status: Some(CloseStatus::Closed),
                closed_at: Some(now),
                unset: Some(TaskExecutionUnset {
                    close_expires_at: true,
                    ..TaskExecutionUnset::default()
                }),
                ..update(now)
            },
        }])
        .await?;

    // 5. Read back.
    let last = read(storage, &id).await?;
    print_state("closed", &last);
    if last.status != TaskExecutionStatus::Completed || last.close_status != CloseStatus::Closed {
        return Err(format!("unexpected final state: {last:?}").into());
    }
    Ok(())
}

/// Picks the execution ready to close. The server only picks executions updated strictly
/// before its own clock, so a just-completed one may need a few milliseconds (more if the
/// server's clock is behind this machine's).
async fn close_ready(
    storage: &ConvexTaskExecutionsStorage,
    id: &str,
) -> Result<TaskExecutionStorageValue> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = now_millis();
        let picked = storage
            .update_by_close_status_and_return(UpdateByCloseStatusRequest {
                close_status: CloseStatus::Ready,
                update: TaskExecutionUpdate {
                    close_status: Some(CloseStatus::Closing),
                    close_expires_at: Some(now + 60_000),
                    ..update(now)
                },
                limit: 1,
            })
            .await?;
        if !picked.is_empty() {
            return ours(picked, id, "close");
        }
        if Instant::now() >= deadline {
            return Err(format!("{id} was never picked for closing").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one execution a step returned, which must be ours.
fn ours(
    mut values: Vec<TaskExecutionStorageValue>,
    id: &str,
    step: &str,
) -> Result<TaskExecutionStorageValue> {
    match values.pop() {
        Some(value) if value.execution_id == id => Ok(value),
        Some(other) => Err(format!(
            "the {step} step took {} instead of {id}: the deployment has other executions \
             waiting; run the quickstart on a development deployment",
            other.execution_id
        )
        .into()),
        None => Err(format!("the {step} step found nothing to take, expected {id}").into()),
    }
}

async fn read(
    storage: &ConvexTaskExecutionsStorage,
    id: &str,
) -> Result<TaskExecutionStorageValue> {
    storage
        .get_many_by_id(vec![GetByIdRequest {
            execution_id: id.to_owned(),
            filters: None,
        }])
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| format!("{id} is not stored").into())
}

fn update(updated_at: u64) -> TaskExecutionUpdate {
    TaskExecutionUpdate {
        updated_at,
        ..TaskExecutionUpdate::default()
    }
}

fn print_state(step: &str, value: &TaskExecutionStorageValue) {
    println!(
        "{step:<10} {id} status={status} isFinished={finished} closeStatus={close} \
         executor={executor} output={output}",
        id = value.execution_id,
        status = value.status.as_str(),
        finished = value.is_finished,
        close = value.close_status.as_str(),
        executor = value.executor_id.as_deref().unwrap_or("-"),
        output = value.output.as_deref().unwrap_or("-"),
    );
}
