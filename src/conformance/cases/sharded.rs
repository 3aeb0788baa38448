//! The sharded range operations on `updatedAt < now`: `updateByStatusAndOCFPStatusAndACCZeroAndReturn`,
//! `updateByCloseStatusAndReturn`, `updateByExecutorIdAndNPCAndReturn`.

use futures::future::BoxFuture;

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory};
use crate::storage::{
    TaskExecutionStorageUpdate, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
};
use crate::task_executions::{
    CloseStatus, OnChildrenFinishedProcessingStatus, TaskExecutionStatus,
};

use super::case;
use super::claim::{check_every_owned_shard, check_order_and_limit, check_unowned_untouched};

const OCFP: &str = "updateByStatusAndOCFPStatusAndACCZeroAndReturn";
const CLOSE: &str = "updateByCloseStatusAndReturn";
const NPC: &str = "updateByExecutorIdAndNPCAndReturn";

pub fn cases() -> Vec<Case> {
    vec![
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/patches_and_returns", ocfp_patches),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/nothing_to_update", ocfp_nothing),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/active_children_excluded", ocfp_active_children),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/status_and_ocfp_status_must_match", ocfp_mismatch),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/updated_at_not_before_now_excluded", ocfp_recent),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/ascending_updated_at_then_insertion_with_limit", ocfp_ordered),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/every_owned_shard_in_order_with_limit_each", ocfp_every_owned_shard),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/unowned_shards_untouched", ocfp_unowned),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/unset", ocfp_unset),
        case!("updateByCloseStatusAndReturn/patches_and_returns", close_patches),
        case!("updateByCloseStatusAndReturn/nothing_to_update", close_nothing),
        case!("updateByCloseStatusAndReturn/close_status_must_match", close_mismatch),
        case!("updateByCloseStatusAndReturn/updated_at_not_before_now_excluded", close_recent),
        case!("updateByCloseStatusAndReturn/ascending_updated_at_then_insertion_with_limit", close_ordered),
        case!("updateByCloseStatusAndReturn/every_owned_shard_in_order_with_limit_each", close_every_owned_shard),
        case!("updateByCloseStatusAndReturn/unowned_shards_untouched", close_unowned),
        case!("updateByCloseStatusAndReturn/unset", close_unset),
        case!("updateByExecutorIdAndNPCAndReturn/patches_and_returns", npc_patches),
        case!("updateByExecutorIdAndNPCAndReturn/nothing_to_update", npc_nothing),
        case!("updateByExecutorIdAndNPCAndReturn/executor_id_and_npc_must_match", npc_mismatch),
        case!("updateByExecutorIdAndNPCAndReturn/updated_at_not_before_now_excluded", npc_recent),
        case!("updateByExecutorIdAndNPCAndReturn/ascending_updated_at_then_insertion_with_limit", npc_ordered),
        case!("updateByExecutorIdAndNPCAndReturn/every_owned_shard_in_order_with_limit_each", npc_every_owned_shard),
        case!("updateByExecutorIdAndNPCAndReturn/unowned_shards_untouched", npc_unowned),
        case!("updateByExecutorIdAndNPCAndReturn/unset", npc_unset),
    ]
}

/// Checks a "patch and return" result: the returned values are the patched ones, and stored.
async fn ensure_returned(
    s: &dyn TaskExecutionsStorage,
    op: &str,
    returned: Vec<TaskExecutionStorageValue>,
    before: &[&TaskExecutionStorageValue],
    update: &TaskExecutionStorageUpdate,
) -> CaseResult {
    let expected: Vec<_> = before.iter().map(|v| patched(v, update)).collect();
    ensure_eq!(
        returned,
        expected,
        "{op}: returned executions (after the patch)"
    );
    for value in &expected {
        ensure_stored(s, value).await?;
    }
    Ok(())
}

// --- on children finished processing ---

fn ocfp_ready(id: &str, updated_at: u64) -> TaskExecutionStorageValue {
    let mut value = execution(id, updated_at.saturating_sub(1_000));
    value.status = TaskExecutionStatus::WaitingForChildren;
    value.children = Some(vec![summary(&format!("{id}-child"))]);
    value.updated_at = updated_at;
    value
}

fn ocfp_request(
    limit: u32,
) -> UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
        status: TaskExecutionStatus::WaitingForChildren,
        on_children_finished_processing_status: OnChildrenFinishedProcessingStatus::Idle,
        update: TaskExecutionStorageUpdate {
            on_children_finished_processing_status: Some(
                OnChildrenFinishedProcessingStatus::Processing,
            ),
            on_children_finished_processing_expires_at: Some(past() + 60_000),
            ..touch(past() + 50)
        },
        limit,
    }
}

fn run_ocfp(
    s: &dyn TaskExecutionsStorage,
    limit: u32,
) -> BoxFuture<'_, Result<Vec<String>, Failure>> {
    Box::pin(async move {
        let returned = s
            .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(ocfp_request(limit))
            .await?;
        Ok(ids(&returned))
    })
}

async fn ocfp_patches(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (a, b) = (ocfp_ready("a", past()), ocfp_ready("b", past() + 1));
    insert_in_order(&*s, &[&a, &b]).await?;
    let request = ocfp_request(10);
    let returned = s
        .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(request.clone())
        .await?;
    ensure_returned(&*s, OCFP, returned, &[&a, &b], &request.update).await
}

async fn ocfp_nothing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        run_ocfp(&*s, 10).await?,
        Vec::<String>::new(),
        "{OCFP} on an empty storage"
    );
    let a = ocfp_ready("a", past());
    s.insert_many(vec![a.clone()]).await?;
    ensure_eq!(
        run_ocfp(&*s, 0).await?,
        Vec::<String>::new(),
        "{OCFP} with limit 0"
    );
    ensure_untouched(&*s, &[&a]).await
}

async fn ocfp_active_children(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut busy = ocfp_ready("busy", past());
    busy.active_children_count = 1;
    let done = ocfp_ready("done", past() + 1);
    s.insert_many(vec![busy.clone(), done]).await?;
    ensure_eq!(run_ocfp(&*s, 10).await?, strings(&["done"]), "{OCFP}");
    ensure_untouched(&*s, &[&busy]).await
}

async fn ocfp_mismatch(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut running = ocfp_ready("running", past());
    running.status = TaskExecutionStatus::Running;
    let mut processing = ocfp_ready("processing", past());
    processing.on_children_finished_processing_status =
        OnChildrenFinishedProcessingStatus::Processing;
    let mut processed = ocfp_ready("processed", past());
    processed.on_children_finished_processing_status =
        OnChildrenFinishedProcessingStatus::Processed;
    let ok = ocfp_ready("ok", past() + 1);
    s.insert_many(vec![
        running.clone(),
        processing.clone(),
        processed.clone(),
        ok,
    ])
    .await?;
    ensure_eq!(run_ocfp(&*s, 10).await?, strings(&["ok"]), "{OCFP}");
    ensure_untouched(&*s, &[&running, &processing, &processed]).await
}

async fn ocfp_recent(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (old, recent) = (ocfp_ready("old", past()), ocfp_ready("recent", future()));
    s.insert_many(vec![recent.clone(), old]).await?;
    ensure_eq!(
        run_ocfp(&*s, 10).await?,
        strings(&["old"]),
        "{OCFP} (\"recent\" has updatedAt after now)"
    );
    ensure_untouched(&*s, &[&recent]).await
}

async fn ocfp_ordered(f: &dyn StorageFactory) -> CaseResult {
    check_order_and_limit(f, OCFP, ocfp_ready, run_ocfp).await
}

async fn ocfp_every_owned_shard(f: &dyn StorageFactory) -> CaseResult {
    check_every_owned_shard(f, OCFP, ocfp_ready, run_ocfp).await
}

async fn ocfp_unowned(f: &dyn StorageFactory) -> CaseResult {
    check_unowned_untouched(f, OCFP, ocfp_ready, run_ocfp).await
}

async fn ocfp_unset(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = with_unsettable(ocfp_ready("a", past()));
    s.insert_many(vec![a.clone()]).await?;
    let removed = [
        UnsetField::ExecutorId,
        UnsetField::StartedAt,
        UnsetField::ExpiresAt,
    ];
    let mut request = ocfp_request(10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    let returned = s
        .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(request.clone())
        .await?;
    ensure_unset(&must_get(&*s, "a").await?, &removed)?;
    ensure_returned(&*s, OCFP, returned, &[&a], &request.update).await
}

// --- close status ---

fn close_ready(id: &str, updated_at: u64) -> TaskExecutionStorageValue {
    let mut value = execution(id, updated_at.saturating_sub(1_000));
    value.status = TaskExecutionStatus::Completed;
    value.is_finished = true;
    value.output = Some("done".to_owned());
    value.close_status = CloseStatus::Ready;
    value.updated_at = updated_at;
    value
}

fn close_request(close_status: CloseStatus, limit: u32) -> UpdateByCloseStatusRequest {
    UpdateByCloseStatusRequest {
        close_status,
        update: TaskExecutionStorageUpdate {
            close_status: Some(CloseStatus::Closing),
            close_expires_at: Some(past() + 60_000),
            ..touch(past() + 50)
        },
        limit,
    }
}

fn run_close(
    s: &dyn TaskExecutionsStorage,
    limit: u32,
) -> BoxFuture<'_, Result<Vec<String>, Failure>> {
    Box::pin(async move {
        let returned = s
            .update_by_close_status_and_return(close_request(CloseStatus::Ready, limit))
            .await?;
        Ok(ids(&returned))
    })
}

async fn close_patches(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (a, b) = (close_ready("a", past()), close_ready("b", past() + 1));
    insert_in_order(&*s, &[&a, &b]).await?;
    let request = close_request(CloseStatus::Ready, 10);
    let returned = s.update_by_close_status_and_return(request.clone()).await?;
    ensure_returned(&*s, CLOSE, returned, &[&a, &b], &request.update).await
}

async fn close_nothing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        run_close(&*s, 10).await?,
        Vec::<String>::new(),
        "{CLOSE} on an empty storage"
    );
    let a = close_ready("a", past());
    s.insert_many(vec![a.clone()]).await?;
    ensure_eq!(
        run_close(&*s, 0).await?,
        Vec::<String>::new(),
        "{CLOSE} with limit 0"
    );
    ensure_untouched(&*s, &[&a]).await
}

async fn close_mismatch(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut others = Vec::new();
    for status in [CloseStatus::Idle, CloseStatus::Closing, CloseStatus::Closed] {
        let mut value = close_ready(status.as_str(), past());
        value.close_status = status;
        others.push(value);
    }
    let ok = close_ready("ok", past() + 1);
    s.insert_many(others.iter().cloned().chain([ok]).collect())
        .await?;
    ensure_eq!(
        run_close(&*s, 10).await?,
        strings(&["ok"]),
        "{CLOSE} for close status ready"
    );
    ensure_untouched(&*s, &others.iter().collect::<Vec<_>>()).await?;
    let request = close_request(CloseStatus::Closed, 10);
    let returned = s.update_by_close_status_and_return(request.clone()).await?;
    ensure_returned(&*s, CLOSE, returned, &[&others[2]], &request.update).await
}

async fn close_recent(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (old, recent) = (close_ready("old", past()), close_ready("recent", future()));
    s.insert_many(vec![recent.clone(), old]).await?;
    ensure_eq!(
        run_close(&*s, 10).await?,
        strings(&["old"]),
        "{CLOSE} (\"recent\" has updatedAt after now)"
    );
    ensure_untouched(&*s, &[&recent]).await
}

async fn close_ordered(f: &dyn StorageFactory) -> CaseResult {
    check_order_and_limit(f, CLOSE, close_ready, run_close).await
}

async fn close_every_owned_shard(f: &dyn StorageFactory) -> CaseResult {
    check_every_owned_shard(f, CLOSE, close_ready, run_close).await
}

async fn close_unowned(f: &dyn StorageFactory) -> CaseResult {
    check_unowned_untouched(f, CLOSE, close_ready, run_close).await
}

async fn close_unset(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = with_unsettable(close_ready("a", past()));
    s.insert_many(vec![a.clone()]).await?;
    let removed = [
        UnsetField::RunOutput,
        UnsetField::OnChildrenFinishedProcessingExpiresAt,
    ];
    let mut request = close_request(CloseStatus::Ready, 10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    let returned = s.update_by_close_status_and_return(request.clone()).await?;
    ensure_unset(&must_get(&*s, "a").await?, &removed)?;
    ensure_returned(&*s, CLOSE, returned, &[&a], &request.update).await
}

// --- promise cancellation ---

fn npc_ready(id: &str, updated_at: u64) -> TaskExecutionStorageValue {
    let mut value = execution(id, updated_at.saturating_sub(1_000));
    value.status = TaskExecutionStatus::Cancelled;
    value.executor_id = Some("executor-x".to_owned());
    value.needs_promise_cancellation = true;
    value.updated_at = updated_at;
    value
}

fn npc_request(
    executor_id: &str,
    npc: bool,
    limit: u32,
) -> UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
    UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
        executor_id: executor_id.to_owned(),
        needs_promise_cancellation: npc,
        update: TaskExecutionStorageUpdate {
            needs_promise_cancellation: Some(!npc),
            ..touch(past() + 50)
        },
        limit,
    }
}

fn run_npc(
    s: &dyn TaskExecutionsStorage,
    limit: u32,
) -> BoxFuture<'_, Result<Vec<String>, Failure>> {
    Box::pin(async move {
        let returned = s
            .update_by_executor_id_and_needs_promise_cancellation_and_return(npc_request(
                "executor-x",
                true,
                limit,
            ))
            .await?;
        Ok(ids(&returned))
    })
}

async fn npc_patches(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (a, b) = (npc_ready("a", past()), npc_ready("b", past() + 1));
    insert_in_order(&*s, &[&a, &b]).await?;
    let request = npc_request("executor-x", true, 10);
    let returned = s
        .update_by_executor_id_and_needs_promise_cancellation_and_return(request.clone())
        .await?;
    ensure_returned(&*s, NPC, returned, &[&a, &b], &request.update).await
}

async fn npc_nothing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        run_npc(&*s, 10).await?,
        Vec::<String>::new(),
        "{NPC} on an empty storage"
    );
    let a = npc_ready("a", past());
    s.insert_many(vec![a.clone()]).await?;
    ensure_eq!(
        run_npc(&*s, 0).await?,
        Vec::<String>::new(),
        "{NPC} with limit 0"
    );
    ensure_untouched(&*s, &[&a]).await
}

async fn npc_mismatch(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut other = npc_ready("other", past());
    other.executor_id = Some("executor-y".to_owned());
    let mut none = npc_ready("none", past());
    none.executor_id = None;
    let mut no_npc = npc_ready("no-npc", past());
    no_npc.needs_promise_cancellation = false;
    let ok = npc_ready("ok", past() + 1);
    s.insert_many(vec![other.clone(), none.clone(), no_npc.clone(), ok])
        .await?;
    ensure_eq!(
        run_npc(&*s, 10).await?,
        strings(&["ok"]),
        "{NPC} for executor-x with npc"
    );
    ensure_untouched(&*s, &[&other, &none, &no_npc]).await?;
    let request = npc_request("executor-x", false, 10);
    let returned = s
        .update_by_executor_id_and_needs_promise_cancellation_and_return(request.clone())
        .await?;
    // "ok" now has npc false too (and updatedAt in the past): both come, in updatedAt order.
    let ok_now = must_get(&*s, "ok").await?;
    let mut expected = vec![&no_npc, &ok_now];
    expected.sort_by_key(|v| v.updated_at);
    ensure_returned(&*s, NPC, returned, &expected, &request.update).await
}

async fn npc_recent(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (old, recent) = (npc_ready("old", past()), npc_ready("recent", future()));
    s.insert_many(vec![recent.clone(), old]).await?;
    ensure_eq!(
        run_npc(&*s, 10).await?,
        strings(&["old"]),
        "{NPC} (\"recent\" has updatedAt after now)"
    );
    ensure_untouched(&*s, &[&recent]).await
}

async fn npc_ordered(f: &dyn StorageFactory) -> CaseResult {
    check_order_and_limit(f, NPC, npc_ready, run_npc).await
}

async fn npc_every_owned_shard(f: &dyn StorageFactory) -> CaseResult {
    check_every_owned_shard(f, NPC, npc_ready, run_npc).await
}

async fn npc_unowned(f: &dyn StorageFactory) -> CaseResult {
    check_unowned_untouched(f, NPC, npc_ready, run_npc).await
}

async fn npc_unset(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut a = with_unsettable(npc_ready("a", past()));
    a.executor_id = Some("executor-x".to_owned());
    s.insert_many(vec![a.clone()]).await?;
    // Unsetting the executor id takes the execution out of this executor's range.
    let removed = [
        UnsetField::ExecutorId,
        UnsetField::Error,
        UnsetField::ExpiresAt,
    ];
    let mut request = npc_request("executor-x", true, 10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    let returned = s
        .update_by_executor_id_and_needs_promise_cancellation_and_return(request.clone())
        .await?;
    ensure_unset(&must_get(&*s, "a").await?, &removed)?;
    ensure_returned(&*s, NPC, returned, &[&a], &request.update).await
}
