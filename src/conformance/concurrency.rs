//! Scenarios with many clients at once, for any [`StorageFactory`]: what the atomicity of each
//! request must guarantee when several executors share a storage.
//!
//! Each client comes from [`StorageBackend::client`](super::StorageBackend::client) on one
//! backend, like executors in separate processes sharing one deployment, and runs in its own
//! tokio task (so a multi-threaded runtime runs them in parallel). Every client owns every
//! shard: maximum contention, each shard being claimed by everyone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::support::{child, execution, future, past, settle, summary, touch};
use super::StorageFactory;
use crate::storage::{
    ConvexStorageOptions, GetByIdRequest, StorageError, TaskExecutionStorageUpdate,
    TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateAndDecrementParentActiveChildrenCountRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByStatusAndStartAtLessThanRequest,
};
use crate::task_executions::{CloseStatus, TaskExecutionStatus};

/// Executions are inserted in batches of this size.
const INSERT_BATCH: usize = 500;

/// What [`claims_exactly_once`] observed.
#[derive(Clone, Debug)]
pub struct ClaimReport {
    pub executions: usize,
    pub claimers: usize,
    pub total_shards: u32,
    /// From the first claim to the last claimer's end.
    pub elapsed: Duration,
    /// How many executions each claimer got.
    pub per_claimer: Vec<usize>,
    /// Executions handed to more than one claimer (or whose stored executor is not the one
    /// that got it).
    pub duplicates: Vec<String>,
    /// Executions no claimer got, or not stored as running afterwards.
    pub lost: Vec<String>,
}

impl ClaimReport {
    /// Every execution claimed by exactly one claimer.
    pub fn is_exact(&self) -> bool {
        self.duplicates.is_empty() && self.lost.is_empty()
    }
}

/// The options every client of a scenario uses.
fn all_shards(total_shards: u32) -> ConvexStorageOptions {
    ConvexStorageOptions {
        total_shards,
        shards: None,
        enable_test_mode: false,
        ..ConvexStorageOptions::default()
    }
}

/// Inserts `executions` ready executions over `total_shards`, then lets `claimers` clients
/// claim them concurrently (by status and `startAt`, a few per call, until a call finds none)
/// and checks that each was claimed by exactly one of them.
///
/// A claimer stops when a call returns nothing: ready executions only ever decrease, so an
/// empty answer means none is left.
pub async fn claims_exactly_once(
    factory: &dyn StorageFactory,
    executions: usize,
    claimers: usize,
    total_shards: u32,
) -> Result<ClaimReport, StorageError> {
    let backend = factory.create().await?;
    let writer = backend.client(all_shards(total_shards)).await?;
    let at = past();
    let ids: Vec<String> = (0..executions).map(|i| format!("claim-{i}")).collect();
    for batch in ids.chunks(INSERT_BATCH) {
        writer
            .insert_many(batch.iter().map(|id| execution(id, at)).collect())
            .await?;
    }
    // Due once the storage's clock has passed the insert (their `startAt` is its `now`).
    settle().await;
    let mut clients = Vec::with_capacity(claimers);
    for _ in 0..claimers {
        clients.push(backend.client(all_shards(total_shards)).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(n, client)| tokio::spawn(claim_until_empty(client, format!("claimer-{n}"), at)))
        .collect();
    let mut claimed_by: Vec<Vec<String>> = Vec::with_capacity(claimers);
    for task in tasks {
        let claimed = task
            .await
            .map_err(|error| StorageError::InvalidRequest(format!("claimer task: {error}")))??;
        claimed_by.push(claimed);
    }
    let elapsed = started.elapsed();

    let mut owners: HashMap<&str, Vec<usize>> = HashMap::new();
    for (n, claimed) in claimed_by.iter().enumerate() {
        for id in claimed {
            owners.entry(id.as_str()).or_default().push(n);
        }
    }
    let stored = writer
        .get_many_by_id(
            ids.iter()
                .map(|id| GetByIdRequest {
                    execution_id: id.clone(),
                    filters: None,
                })
                .collect(),
        )
        .await?;
    let mut duplicates = Vec::new();
    let mut lost = Vec::new();
    for (id, stored) in ids.iter().zip(stored) {
        let owner = owners.get(id.as_str());
        match (owner.map(Vec::as_slice), stored) {
            (Some([only]), Some(value)) if value.status == TaskExecutionStatus::Running => {
                if value.executor_id.as_deref() != Some(format!("claimer-{only}").as_str()) {
                    duplicates.push(id.clone());
                }
            }
            (Some(owners), _) if owners.len() > 1 => duplicates.push(id.clone()),
            _ => lost.push(id.clone()),
        }
    }
    Ok(ClaimReport {
        executions,
        claimers,
        total_shards,
        elapsed,
        per_claimer: claimed_by.iter().map(Vec::len).collect(),
        duplicates,
        lost,
    })
}

async fn claim_until_empty(
    client: Arc<dyn TaskExecutionsStorage>,
    executor_id: String,
    at: u64,
) -> Result<Vec<String>, StorageError> {
    let mut claimed = Vec::new();
    loop {
        let got = client
            .update_by_status_and_start_at_less_than_and_return(
                UpdateByStatusAndStartAtLessThanRequest {
                    status: TaskExecutionStatus::Ready,
                    // No bound of the client's: the storage's `now` bounds the claim.
                    start_at_less_than: future(),
                    update: TaskExecutionStorageUpdate {
                        status: Some(TaskExecutionStatus::Running),
                        executor_id: Some(executor_id.clone()),
                        started_at: Some(at + 10),
                        ..touch(at + 10)
                    },
                    update_expires_at_with_started_at: at + 10,
                    limit: 4,
                },
            )
            .await?;
        if got.is_empty() {
            return Ok(claimed);
        }
        claimed.extend(got.into_iter().map(|value| value.execution_id));
    }
}

/// What [`parent_counters_exact`] observed.
#[derive(Clone, Debug)]
pub struct ParentCounterReport {
    pub parents: usize,
    /// Finished children per parent (each parent also has a finished finalize child).
    pub children_per_parent: usize,
    pub closers: usize,
    pub total_shards: u32,
    pub elapsed: Duration,
    /// Executions the closers patched in all (children and finalize children).
    pub patched: u64,
    /// Parents whose count is not what it should be: (execution id, expected, actual).
    pub wrong_counters: Vec<(String, u32, u32)>,
    /// Children not closed afterwards.
    pub unclosed: Vec<String>,
}

impl ParentCounterReport {
    /// Every child closed exactly once and every counter right.
    pub fn is_exact(&self) -> bool {
        let expected = self.parents * (self.children_per_parent + 1);
        self.wrong_counters.is_empty()
            && self.unclosed.is_empty()
            && usize::try_from(self.patched).is_ok_and(|patched| patched == expected)
    }
}

/// Each parent waits for `children_per_parent` finished children plus [`STILL_ACTIVE`] that
/// are not finished yet, and has a finished finalize child; `closers` clients concurrently
/// close finished children and decrement their parents, until a call finds none. Every parent
/// must end with exactly [`STILL_ACTIVE`] active children: the finalize child does not count,
/// and no decrement is lost or applied twice.
pub async fn parent_counters_exact(
    factory: &dyn StorageFactory,
    parents: usize,
    children_per_parent: usize,
    closers: usize,
    total_shards: u32,
) -> Result<ParentCounterReport, StorageError> {
    let backend = factory.create().await?;
    let writer = backend.client(all_shards(total_shards)).await?;
    let at = past();
    let parent_ids: Vec<String> = (0..parents).map(|p| format!("parent-{p}")).collect();
    let mut child_ids = Vec::new();
    for batch in parent_ids.chunks(INSERT_BATCH) {
        let values = batch
            .iter()
            .map(|id| {
                let mut parent = execution(id, at);
                parent.status = TaskExecutionStatus::Running;
                parent
            })
            .collect();
        writer.insert_many(values).await?;
    }
    let waiting = u32::try_from(children_per_parent)
        .map_err(|_| StorageError::InvalidRequest("too many children".to_owned()))?
        .saturating_add(STILL_ACTIVE);
    for batch in parent_ids.chunks(8) {
        let mut requests = Vec::new();
        for parent_id in batch {
            let children: Vec<TaskExecutionStorageValue> = (0..=children_per_parent)
                .map(|i| finished_child(parent_id, i, children_per_parent, at))
                .collect();
            child_ids.extend(children.iter().map(|c| c.execution_id.clone()));
            requests.push(UpdateByIdAndInsertChildrenIfUpdatedRequest {
                execution_id: parent_id.clone(),
                filters: None,
                update: TaskExecutionStorageUpdate {
                    status: Some(TaskExecutionStatus::WaitingForChildren),
                    children: Some(children.iter().map(|c| summary(&c.execution_id)).collect()),
                    active_children_count: Some(waiting),
                    ..touch(at)
                },
                children_task_executions_to_insert_if_any_updated: children,
            });
        }
        writer
            .update_many_by_id_and_insert_children_if_updated(requests)
            .await?;
    }
    // Closable once the storage's clock has passed the children's `updatedAt` (its `now`).
    settle().await;
    let mut clients = Vec::with_capacity(closers);
    for _ in 0..closers {
        clients.push(backend.client(all_shards(total_shards)).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(close_until_empty(client, at)))
        .collect();
    let mut patched = 0_u64;
    for task in tasks {
        patched += task
            .await
            .map_err(|error| StorageError::InvalidRequest(format!("closer task: {error}")))??;
    }
    let elapsed = started.elapsed();

    let expected: BTreeMap<&str, u32> = parent_ids
        .iter()
        .map(|id| (id.as_str(), STILL_ACTIVE))
        .collect();
    let mut wrong_counters = Vec::new();
    for (id, value) in parent_ids.iter().zip(get_all(&*writer, &parent_ids).await?) {
        let actual = value.map_or(u32::MAX, |v| v.active_children_count);
        let expected = expected.get(id.as_str()).copied().unwrap_or_default();
        if actual != expected {
            wrong_counters.push((id.clone(), expected, actual));
        }
    }
    let unclosed = child_ids
        .iter()
        .zip(get_all(&*writer, &child_ids).await?)
        .filter(|(_, value)| {
            value
                .as_ref()
                .is_none_or(|v| v.close_status != CloseStatus::Closed)
        })
        .map(|(id, _)| id.clone())
        .collect();
    Ok(ParentCounterReport {
        parents,
        children_per_parent,
        closers,
        total_shards,
        elapsed,
        patched,
        wrong_counters,
        unclosed,
    })
}

/// Active children each parent keeps in [`parent_counters_exact`]: children it waits for that
/// have not finished, so that a count going below its due shows.
pub const STILL_ACTIVE: u32 = 2;

/// The `index`-th finished child of `parent`; the last one (`index == children`) is its
/// finalize child.
fn finished_child(
    parent: &str,
    index: usize,
    children: usize,
    at: u64,
) -> TaskExecutionStorageValue {
    let index_u32 = u32::try_from(index).unwrap_or(u32::MAX);
    let mut value = child(parent, &format!("{parent}-child-{index}"), index_u32, at);
    value.status = TaskExecutionStatus::Completed;
    value.is_finished = true;
    value.close_status = CloseStatus::Ready;
    if let Some(link) = &mut value.parent {
        link.is_finalize_of_parent = index == children;
    }
    value
}

async fn close_until_empty(
    client: Arc<dyn TaskExecutionsStorage>,
    at: u64,
) -> Result<u64, StorageError> {
    let mut patched = 0;
    loop {
        let count = client
            .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
                UpdateAndDecrementParentActiveChildrenCountRequest {
                    is_finished: true,
                    close_status: CloseStatus::Ready,
                    update: TaskExecutionStorageUpdate {
                        close_status: Some(CloseStatus::Closed),
                        closed_at: Some(at + 10),
                        ..touch(at + 10)
                    },
                    limit: 8,
                },
            )
            .await?;
        if count == 0 {
            return Ok(patched);
        }
        patched += u64::from(count);
    }
}

async fn get_all(
    storage: &dyn TaskExecutionsStorage,
    ids: &[String],
) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
    let mut values = Vec::with_capacity(ids.len());
    for batch in ids.chunks(INSERT_BATCH) {
        let requests = batch
            .iter()
            .map(|id| GetByIdRequest {
                execution_id: id.clone(),
                filters: None,
            })
            .collect();
        values.extend(storage.get_many_by_id(requests).await?);
    }
    Ok(values)
}
