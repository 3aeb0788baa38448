//! The sharded range operations on `updatedAt < now`: `updateByStatusAndOCFPStatusAndACCZeroAndReturn`,
//! `updateByCloseStatusAndReturn`, `updateByExecutorIdAndNPCAndReturn`.

use futures::future::BoxFuture;

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory, Window};
use crate::storage::{
    TaskExecutionStorageUpdate, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
};
use crate::task_executions::{
    CloseStatus, OnChildrenFinishedProcessingStatus, TaskExecutionStatus,
};

use super::case;
use super::claim::{
    check_every_owned_shard, check_order_and_limit, check_unowned_untouched, Make, Run,
};

const OCFP: &str = "updateByStatusAndOCFPStatusAndACCZeroAndReturn";
const CLOSE: &str = "updateByCloseStatusAndReturn";
const NPC: &str = "updateByExecutorIdAndNPCAndReturn";

pub fn cases() -> Vec<Case> {
    vec![
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/patches_and_returns", ocfp_patches),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/nothing_to_update", ocfp_nothing),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/active_children_excluded", ocfp_active_children),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/status_and_ocfp_status_must_match", ocfp_mismatch),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/updated_at_is_the_storage_now_whatever_was_sent", ocfp_recent),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/ascending_updated_at_then_insertion_with_limit", ocfp_ordered),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/every_owned_shard_in_order_with_limit_each", ocfp_every_owned_shard),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/unowned_shards_untouched", ocfp_unowned),
        case!("updateByStatusAndOCFPStatusAndACCZeroAndReturn/unset", ocfp_unset),
        case!("updateByCloseStatusAndReturn/patches_and_returns", close_patches),
        case!("updateByCloseStatusAndReturn/nothing_to_update", close_nothing),
        case!("updateByCloseStatusAndReturn/close_status_must_match", close_mismatch),
        case!("updateByCloseStatusAndReturn/updated_at_is_the_storage_now_whatever_was_sent", close_recent),
        case!("updateByCloseStatusAndReturn/ascending_updated_at_then_insertion_with_limit", close_ordered),
        case!("updateByCloseStatusAndReturn/every_owned_shard_in_order_with_limit_each", close_every_owned_shard),
        case!("updateByCloseStatusAndReturn/unowned_shards_untouched", close_unowned),
        case!("updateByCloseStatusAndReturn/unset", close_unset),
        case!("updateByExecutorIdAndNPCAndReturn/patches_and_returns", npc_patches),
        case!("updateByExecutorIdAndNPCAndReturn/nothing_to_update", npc_nothing),
        case!("updateByExecutorIdAndNPCAndReturn/executor_id_and_npc_must_match", npc_mismatch),
        case!("updateByExecutorIdAndNPCAndReturn/updated_at_is_the_storage_now_whatever_was_sent", npc_recent),
        case!("updateByExecutorIdAndNPCAndReturn/ascending_updated_at_then_insertion_with_limit", npc_ordered),
        case!("updateByExecutorIdAndNPCAndReturn/every_owned_shard_in_order_with_limit_each", npc_every_owned_shard),
        case!("updateByExecutorIdAndNPCAndReturn/unowned_shards_untouched", npc_unowned),
        case!("updateByExecutorIdAndNPCAndReturn/unset", npc_unset),
    ]
}

/// Runs a "patch and return" call and checks its result: `before`, in order, each returned
/// and stored as patched with `update` at its `updatedAt` (a `now` of the call's window).
async fn ensure_returned<F>(
    f: &dyn StorageFactory,
    s: &dyn TaskExecutionsStorage,
    op: &str,
    call: F,
    before: &[&TaskExecutionStorageValue],
    update: &TaskExecutionStorageUpdate,
) -> CaseResult
where
    F: std::future::Future<
        Output = Result<Vec<TaskExecutionStorageValue>, crate::storage::StorageError>,
    >,
{
    let window = Window::open(f, s);
    let returned = call.await?;
    let window = window.close(s);
    ensure_eq!(
        ids(&returned),
        before
            .iter()
            .map(|v| v.execution_id.clone())
            .collect::<Vec<_>>(),
        "{op}: returned"
    );
    for (value, got) in before.iter().zip(&returned) {
        let now = got.updated_at;
        window.ensure_contains(now, format_args!("updatedAt of {}", got.execution_id))?;
        ensure_eq!(
            *got,
            patched_at(value, update, now),
            "{op}: {} as returned (after the patch)",
            got.execution_id
        );
        ensure_stored(s, got).await?;
    }
    Ok(())
}

/// Two executions sent by a client far ahead, then by one far behind: both get the storage's
/// `now` as `updatedAt`, so the one ahead is not hidden, nor does the one behind come first.
async fn check_stamped_updated_at(
    f: &dyn StorageFactory,
    op: &str,
    make: Make,
    run: Run,
) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut ahead = make("ahead");
    ahead.updated_at = future();
    let mut behind = make("behind");
    behind.updated_at = past();
    insert_in_order(f, &*s, &[&ahead, &behind]).await?;
    settle().await;
    ensure_eq!(
        run(&*s, 10).await?,
        strings(&["ahead", "behind"]),
        "{op}: by the updatedAt the storage gave"
    );
    Ok(())
}

// --- on children finished processing ---

fn ocfp_ready(id: &str) -> TaskExecutionStorageValue {
    let mut value = execution(id, past());
    value.status = TaskExecutionStatus::WaitingForChildren;
    value.children = Some(vec![summary(&format!("{id}-child"))]);
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
            on_children_finished_processing_expires_at: Some(future()),
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
    let stored = insert_in_order(f, &*s, &[&ocfp_ready("a"), &ocfp_ready("b")]).await?;
    settle().await;
    let request = ocfp_request(10);
    ensure_returned(
        f,
        &*s,
        OCFP,
        s.update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(request.clone()),
        &stored.iter().collect::<Vec<_>>(),
        &request.update,
    )
    .await
}

async fn ocfp_nothing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        run_ocfp(&*s, 10).await?,
        Vec::<String>::new(),
        "{OCFP} on an empty storage"
    );
    let a = insert(f, &*s, &[&ocfp_ready("a")]).await?;
    settle().await;
    ensure_eq!(
        run_ocfp(&*s, 0).await?,
        Vec::<String>::new(),
        "{OCFP} with limit 0"
    );
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

async fn ocfp_active_children(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut busy = ocfp_ready("busy");
    busy.active_children_count = 1;
    let stored = insert(f, &*s, &[&busy, &ocfp_ready("done")]).await?;
    settle().await;
    ensure_eq!(run_ocfp(&*s, 10).await?, strings(&["done"]), "{OCFP}");
    ensure_untouched(&*s, &[&stored[0]]).await
}

async fn ocfp_mismatch(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut running = ocfp_ready("running");
    running.status = TaskExecutionStatus::Running;
    let mut processing = ocfp_ready("processing");
    processing.on_children_finished_processing_status =
        OnChildrenFinishedProcessingStatus::Processing;
    let mut processed = ocfp_ready("processed");
    processed.on_children_finished_processing_status =
        OnChildrenFinishedProcessingStatus::Processed;
    let stored = insert(
        f,
        &*s,
        &[&running, &processing, &processed, &ocfp_ready("ok")],
    )
    .await?;
    settle().await;
    ensure_eq!(run_ocfp(&*s, 10).await?, strings(&["ok"]), "{OCFP}");
    ensure_untouched(&*s, &stored[..3].iter().collect::<Vec<_>>()).await
}

async fn ocfp_recent(f: &dyn StorageFactory) -> CaseResult {
    check_stamped_updated_at(f, OCFP, ocfp_ready, run_ocfp).await
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
    let a = insert(f, &*s, &[&with_unsettable(ocfp_ready("a"))])
        .await?
        .remove(0);
    let removed = [
        UnsetField::ExecutorId,
        UnsetField::StartedAt,
        UnsetField::ExpiresAt,
    ];
    let mut request = ocfp_request(10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    settle().await;
    ensure_returned(
        f,
        &*s,
        OCFP,
        s.update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(request.clone()),
        &[&a],
        &request.update,
    )
    .await?;
    ensure_unset(&must_get(&*s, "a").await?, &removed)
}

// --- close status ---

fn close_ready(id: &str) -> TaskExecutionStorageValue {
    let mut value = execution(id, past());
    value.status = TaskExecutionStatus::Completed;
    value.is_finished = true;
    value.output = Some("done".to_owned());
    value.close_status = CloseStatus::Ready;
    value
}

fn close_request(close_status: CloseStatus, limit: u32) -> UpdateByCloseStatusRequest {
    UpdateByCloseStatusRequest {
        close_status,
        update: TaskExecutionStorageUpdate {
            close_status: Some(CloseStatus::Closing),
            close_expires_at: Some(future()),
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
    let stored = insert_in_order(f, &*s, &[&close_ready("a"), &close_ready("b")]).await?;
    settle().await;
    let request = close_request(CloseStatus::Ready, 10);
    ensure_returned(
        f,
        &*s,
        CLOSE,
        s.update_by_close_status_and_return(request.clone()),
        &stored.iter().collect::<Vec<_>>(),
        &request.update,
    )
    .await
}

async fn close_nothing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        run_close(&*s, 10).await?,
        Vec::<String>::new(),
        "{CLOSE} on an empty storage"
    );
    let a = insert(f, &*s, &[&close_ready("a")]).await?;
    settle().await;
    ensure_eq!(
        run_close(&*s, 0).await?,
        Vec::<String>::new(),
        "{CLOSE} with limit 0"
    );
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

async fn close_mismatch(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut others = Vec::new();
    for status in [CloseStatus::Idle, CloseStatus::Closing, CloseStatus::Closed] {
        let mut value = close_ready(status.as_str());
        value.close_status = status;
        others.push(value);
    }
    let ok = close_ready("ok");
    let stored = insert(f, &*s, &others.iter().chain([&ok]).collect::<Vec<_>>()).await?;
    settle().await;
    ensure_eq!(
        run_close(&*s, 10).await?,
        strings(&["ok"]),
        "{CLOSE} for close status ready"
    );
    ensure_untouched(&*s, &stored[..3].iter().collect::<Vec<_>>()).await?;
    let request = close_request(CloseStatus::Closed, 10);
    ensure_returned(
        f,
        &*s,
        CLOSE,
        s.update_by_close_status_and_return(request.clone()),
        &[&stored[2]],
        &request.update,
    )
    .await
}

async fn close_recent(f: &dyn StorageFactory) -> CaseResult {
    check_stamped_updated_at(f, CLOSE, close_ready, run_close).await
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
    let a = insert(f, &*s, &[&with_unsettable(close_ready("a"))])
        .await?
        .remove(0);
    let removed = [
        UnsetField::RunOutput,
        UnsetField::OnChildrenFinishedProcessingExpiresAt,
    ];
    let mut request = close_request(CloseStatus::Ready, 10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    settle().await;
    ensure_returned(
        f,
        &*s,
        CLOSE,
        s.update_by_close_status_and_return(request.clone()),
        &[&a],
        &request.update,
    )
    .await?;
    ensure_unset(&must_get(&*s, "a").await?, &removed)
}

// --- promise cancellation ---

fn npc_ready(id: &str) -> TaskExecutionStorageValue {
    let mut value = execution(id, past());
    value.status = TaskExecutionStatus::Cancelled;
    value.executor_id = Some("executor-x".to_owned());
    value.needs_promise_cancellation = true;
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
    let stored = insert_in_order(f, &*s, &[&npc_ready("a"), &npc_ready("b")]).await?;
    settle().await;
    let request = npc_request("executor-x", true, 10);
    ensure_returned(
        f,
        &*s,
        NPC,
        s.update_by_executor_id_and_needs_promise_cancellation_and_return(request.clone()),
        &stored.iter().collect::<Vec<_>>(),
        &request.update,
    )
    .await
}

async fn npc_nothing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        run_npc(&*s, 10).await?,
        Vec::<String>::new(),
        "{NPC} on an empty storage"
    );
    let a = insert(f, &*s, &[&npc_ready("a")]).await?;
    settle().await;
    ensure_eq!(
        run_npc(&*s, 0).await?,
        Vec::<String>::new(),
        "{NPC} with limit 0"
    );
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

async fn npc_mismatch(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut other = npc_ready("other");
    other.executor_id = Some("executor-y".to_owned());
    let mut none = npc_ready("none");
    none.executor_id = None;
    let mut no_npc = npc_ready("no-npc");
    no_npc.needs_promise_cancellation = false;
    let stored = insert(f, &*s, &[&other, &none, &no_npc, &npc_ready("ok")]).await?;
    settle().await;
    ensure_eq!(
        run_npc(&*s, 10).await?,
        strings(&["ok"]),
        "{NPC} for executor-x with npc"
    );
    ensure_untouched(&*s, &stored[..3].iter().collect::<Vec<_>>()).await?;
    // "ok" now has npc false too, updated after "no-npc": both come, in updatedAt order.
    let ok_now = must_get(&*s, "ok").await?;
    settle().await;
    let request = npc_request("executor-x", false, 10);
    ensure_returned(
        f,
        &*s,
        NPC,
        s.update_by_executor_id_and_needs_promise_cancellation_and_return(request.clone()),
        &[&stored[2], &ok_now],
        &request.update,
    )
    .await
}

async fn npc_recent(f: &dyn StorageFactory) -> CaseResult {
    check_stamped_updated_at(f, NPC, npc_ready, run_npc).await
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
    let mut a = with_unsettable(npc_ready("a"));
    a.executor_id = Some("executor-x".to_owned());
    let a = insert(f, &*s, &[&a]).await?.remove(0);
    // Unsetting the executor id takes the execution out of this executor's range.
    let removed = [
        UnsetField::ExecutorId,
        UnsetField::Error,
        UnsetField::ExpiresAt,
    ];
    let mut request = npc_request("executor-x", true, 10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    settle().await;
    ensure_returned(
        f,
        &*s,
        NPC,
        s.update_by_executor_id_and_needs_promise_cancellation_and_return(request.clone()),
        &[&a],
        &request.update,
    )
    .await?;
    ensure_unset(&must_get(&*s, "a").await?, &removed)
}
