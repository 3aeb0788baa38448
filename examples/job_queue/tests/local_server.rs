//! The job queue example end to end from Rust: the client `#[convex_component]` generated from
//! `src/lib.rs` calls the component `cargo codegen generate` wrote from the same file, over
//! Convex's HTTP API, on the local Convex server (`convex/server`, serving `app/` and
//! `generated/component` of this example). Every one of the 14 operations runs at least once.

use std::path::Path;

use durable_execution_storage_convex::local_server::{LocalConvexServer, LocalServerOptions};
use durable_execution_storage_convex::runtime::{AuthSecret, ConvexHttpClient};
use job_queue_example::job_queue::{
    self as jq, Job, JobFilters, JobPayload, JobQueueClient, JobStatus, JobUnset, JobUpdate,
    Worker, WorkerFilters, WorkerState, WorkerUnset, WorkerUpdate,
};

const SECRET: &str = "job-queue-example-secret";

/// The local server serving this example's app and component, in test mode.
fn start_server() -> LocalConvexServer {
    let example = Path::new(env!("CARGO_MANIFEST_DIR"));
    let component = example.join("generated/component");
    LocalConvexServer::start(
        LocalServerOptions::new(SECRET)
            .env(
                "LOCAL_CONVEX_APP",
                example.join("app").display().to_string(),
            )
            .env(
                "LOCAL_CONVEX_COMPONENTS",
                format!("{}={}", jq::COMPONENT_NAME, component.display()),
            )
            .env("JOB_QUEUE_AUTH_SECRET", SECRET)
            .env("JOB_QUEUE_TEST_MODE", "true"),
    )
    .expect("the local Convex server starts (needs `cd convex && npm ci`)")
}

fn client(server: &LocalConvexServer, instance: &str, secret: &str) -> JobQueueClient {
    let http = ConvexHttpClient::new(&server.instance_url(instance)).expect("a valid URL");
    JobQueueClient::new(http, AuthSecret::new(secret))
}

fn job(job_id: &str, run_at: u64) -> Job {
    Job {
        job_id: job_id.to_owned(),
        queue: "emails".to_owned(),
        dedup_key: None,
        payload: JobPayload {
            handler: "sendEmail".to_owned(),
            input: "{}".to_owned(),
            priority: Some(1),
        },
        tags: vec!["welcome".to_owned()],
        status: JobStatus::Queued,
        worker_id: None,
        attempts: 0,
        timeout_ms: 60_000,
        run_at,
        lease_expires_at: None,
        output: None,
        errors: None,
        parent_job_doc_id: None,
        created_at: 0,
        updated_at: 0,
    }
}

fn update(status: JobStatus) -> JobUpdate {
    JobUpdate {
        status: Some(status),
        worker_id: None,
        attempts: None,
        run_at: None,
        lease_expires_at: None,
        output: None,
        errors: None,
        updated_at: 0,
        unset: None,
    }
}

fn worker(worker_id: &str) -> Worker {
    Worker {
        worker_id: worker_id.to_owned(),
        queues: vec!["emails".to_owned()],
        state: WorkerState::Idle,
        current_job_id: None,
        last_seen_at: 0,
    }
}

async fn get(
    client: &JobQueueClient,
    job_id: &str,
) -> Option<durable_execution_storage_convex::Doc<Job>> {
    let mut found = client
        .get_jobs(&jq::GetJobsArgs {
            requests: vec![jq::ByJobIdRequest {
                job_id: job_id.to_owned(),
                filters: None,
            }],
        })
        .await
        .expect("getJobs");
    assert_eq!(found.len(), 1);
    found.pop().flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_through_the_generated_client() {
    let server = start_server();
    let client = client(&server, "every-operation", SECRET);

    // insert with unique indexes; a duplicate is refused.
    let mut with_key = job("j1", 0);
    with_key.dedup_key = Some("welcome:1".to_owned());
    client
        .enqueue_jobs(&jq::EnqueueJobsArgs {
            jobs: vec![with_key.clone(), job("j2", 0), job("later", u64::MAX >> 12)],
        })
        .await
        .expect("enqueueJobs");
    let mut duplicate = job("j3", 0);
    duplicate.dedup_key = Some("welcome:1".to_owned());
    let error = client
        .enqueue_jobs(&jq::EnqueueJobsArgs {
            jobs: vec![duplicate],
        })
        .await
        .expect_err("a dedup key that exists is refused");
    assert_eq!(error.code(), Some("ALREADY_EXISTS"), "{error}");
    assert!(
        get(&client, "j3").await.is_none(),
        "nothing of the call was written"
    );

    // insert without unique index; get_each first without filters.
    client
        .register_workers(&jq::RegisterWorkersArgs {
            workers: vec![worker("w1")],
        })
        .await
        .expect("registerWorkers");
    let workers = client
        .get_workers(&jq::GetWorkersArgs {
            requests: vec![jq::ByWorkerIdRequest {
                worker_id: "w1".to_owned(),
            }],
        })
        .await
        .expect("getWorkers");
    let w1 = workers[0].as_ref().expect("w1 registered");
    assert_eq!(w1.value.state, WorkerState::Idle);
    assert!(w1.value.last_seen_at > 0, "the server stamps lastSeenAt");

    // get_each first with filters: the stored job, the server's times.
    let stored = get(&client, "j1").await.expect("j1 stored");
    assert_eq!(stored.value.payload, with_key.payload);
    assert_eq!(stored.value.dedup_key.as_deref(), Some("welcome:1"));
    assert!(
        stored.value.run_at >= stored.value.created_at,
        "runAt raised to the server's time"
    );
    let filtered = client
        .get_jobs(&jq::GetJobsArgs {
            requests: vec![jq::ByJobIdRequest {
                job_id: "j1".to_owned(),
                filters: Some(JobFilters {
                    status: Some(JobStatus::Running),
                }),
            }],
        })
        .await
        .expect("getJobs");
    assert_eq!(
        filtered,
        vec![None],
        "a filter that does not match gives none"
    );

    // update_range with add and limit, returning documents: claims j1 then j2 (oldest first).
    let mut running = update(JobStatus::Running);
    running.worker_id = Some("w1".to_owned());
    let claimed = client
        .claim_jobs(&jq::ClaimJobsArgs {
            queue: "emails".to_owned(),
            run_at_before: u64::MAX >> 12,
            update: running,
            lease_started_at: 0,
            limit: 2,
        })
        .await
        .expect("claimJobs");
    let ids: Vec<&str> = claimed
        .iter()
        .map(|doc| doc.value.job_id.as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&"j1") && ids.contains(&"j2"), "{ids:?}");
    for doc in &claimed {
        assert_eq!(doc.value.status, JobStatus::Running);
        let lease = doc.value.lease_expires_at.expect("a lease");
        assert_eq!(
            lease,
            doc.value.updated_at + 60_000,
            "lease = server's now + timeoutMs"
        );
    }

    // get_each over every match, without filters.
    let listed = client
        .list_jobs(&jq::ListJobsArgs {
            requests: vec![
                jq::ByQueueAndStatusRequest {
                    queue: "emails".to_owned(),
                    status: JobStatus::Running,
                },
                jq::ByQueueAndStatusRequest {
                    queue: "emails".to_owned(),
                    status: JobStatus::Queued,
                },
            ],
        })
        .await
        .expect("listJobs");
    assert_eq!(listed[0].len(), 2);
    assert_eq!(listed[1].len(), 1);
    assert_eq!(listed[1][0].value.job_id, "later");

    // update_each first with filters and an unset.
    let mut failed = update(JobStatus::Failed);
    failed.errors = Some(vec!["smtp down".to_owned()]);
    failed.attempts = Some(1);
    failed.unset = Some(JobUnset {
        worker_id: true,
        lease_expires_at: true,
        output: false,
    });
    client
        .update_jobs(&jq::UpdateJobsArgs {
            requests: vec![jq::UpdateJobRequest {
                job_id: "j2".to_owned(),
                filters: Some(JobFilters {
                    status: Some(JobStatus::Running),
                }),
                update: failed,
            }],
        })
        .await
        .expect("updateJobs");
    let j2 = get(&client, "j2").await.expect("j2");
    assert_eq!(j2.value.status, JobStatus::Failed);
    assert_eq!(j2.value.worker_id, None);
    assert_eq!(j2.value.lease_expires_at, None);
    assert_eq!(j2.value.errors, Some(vec!["smtp down".to_owned()]));

    // update_each over every match, without filters: requeue the failed jobs.
    client
        .update_queues(&jq::UpdateQueuesArgs {
            requests: vec![jq::UpdateQueueRequest {
                queue: "emails".to_owned(),
                status: JobStatus::Failed,
                update: update(JobStatus::Queued),
            }],
        })
        .await
        .expect("updateQueues");
    assert_eq!(
        get(&client, "j2").await.expect("j2").value.status,
        JobStatus::Queued
    );

    // update_each first with children: j1 succeeds and spawns a follow-up linked to it.
    let mut succeeded = update(JobStatus::Succeeded);
    succeeded.output = Some("sent".to_owned());
    client
        .complete_jobs_and_spawn(&jq::CompleteJobsAndSpawnArgs {
            requests: vec![jq::UpdateJobAndSpawnRequest {
                job_id: "j1".to_owned(),
                filters: Some(JobFilters {
                    status: Some(JobStatus::Running),
                }),
                update: succeeded,
                spawn: vec![job("j1-followup", 0)],
            }],
        })
        .await
        .expect("completeJobsAndSpawn");
    let j1 = get(&client, "j1").await.expect("j1");
    assert_eq!(j1.value.status, JobStatus::Succeeded);
    let followup = get(&client, "j1-followup").await.expect("spawned");
    assert_eq!(followup.value.parent_job_doc_id, Some(j1.id.clone()));

    // update_each over every match with filters.
    client
        .update_workers(&jq::UpdateWorkersArgs {
            requests: vec![jq::UpdateWorkerRequest {
                worker_id: "w1".to_owned(),
                filters: Some(WorkerFilters {
                    state: Some(WorkerState::Idle),
                }),
                update: WorkerUpdate {
                    state: Some(WorkerState::Draining),
                    current_job_id: None,
                    last_seen_at: 0,
                    unset: Some(WorkerUnset {
                        current_job_id: true,
                    }),
                },
            }],
        })
        .await
        .expect("updateWorkers");

    // update_range on an optional field (gte + lt), returning the count: no lease expired.
    let expired = client
        .expire_leases(&jq::ExpireLeasesArgs {
            update: update(JobStatus::Failed),
            limit: 10,
        })
        .await
        .expect("expireLeases");
    assert_eq!(
        expired, 0,
        "leases of 60 s have not expired, jobs without one never match"
    );

    // The test-only deletes (the server runs in test mode).
    client
        .delete_job(&jq::DeleteJobArgs {
            job_id: "j1".to_owned(),
        })
        .await
        .expect("deleteJob");
    assert!(get(&client, "j1").await.is_none());
    client
        .delete_all_jobs(&jq::DeleteAllJobsArgs {})
        .await
        .expect("deleteAllJobs");
    client
        .delete_all_workers(&jq::DeleteAllWorkersArgs {})
        .await
        .expect("deleteAllWorkers");
    assert!(get(&client, "j2").await.is_none());

    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_is_refused() {
    let server = start_server();
    let client = client(&server, "wrong-secret", "not-the-secret");
    let error = client
        .enqueue_jobs(&jq::EnqueueJobsArgs {
            jobs: vec![job("j", 0)],
        })
        .await
        .expect_err("refused");
    assert!(error.is_unauthorized(), "{error}");
    server.stop();
}
