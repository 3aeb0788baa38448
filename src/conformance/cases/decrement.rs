//! `updateAndDecrementParentACCByIsFinishedAndCloseStatus`.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory};
use crate::storage::{
    TaskExecutionStorageUpdate, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateAndDecrementParentActiveChildrenCountRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest,
};
use crate::task_executions::{CloseStatus, TaskExecutionStatus};

use super::case;

const OP: &str = "updateAndDecrementParentACCByIsFinishedAndCloseStatus";

pub fn cases() -> Vec<Case> {
    vec![
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/patches_and_decrements_the_parent", decrements),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/nothing_to_update", nothing),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/several_children_of_one_parent_each_count", several_children),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/only_child_sets_zero", only_child),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/finalize_child_not_counted", finalize_child),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/never_below_zero", floor_zero),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/root_execution_has_no_parent", root),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/children_on_two_shards", two_shards),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/parent_in_an_unowned_shard", parent_unowned),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/updated_at_not_before_now_excluded", recent),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/is_finished_and_close_status_must_match", mismatch),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/ascending_updated_at_then_insertion_with_limit", ordered),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/limit_split_across_owned_shards", limit_split),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/unowned_shards_untouched", unowned),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/unset", unset),
    ]
}

/// A finished child ready to be closed, last updated at `at`.
fn done(parent: &str, id: &str, index: u32, at: u64) -> TaskExecutionStorageValue {
    let mut value = child(parent, id, index, at.saturating_sub(1_000));
    value.status = TaskExecutionStatus::Completed;
    value.is_finished = true;
    value.output = Some("out".to_owned());
    value.finished_at = Some(at);
    value.close_status = CloseStatus::Ready;
    value.updated_at = at;
    value
}

fn only(mut value: TaskExecutionStorageValue) -> TaskExecutionStorageValue {
    if let Some(parent) = &mut value.parent {
        parent.is_only_child_of_parent = true;
    }
    value
}

fn finalize(mut value: TaskExecutionStorageValue) -> TaskExecutionStorageValue {
    if let Some(parent) = &mut value.parent {
        parent.is_finalize_of_parent = true;
    }
    value
}

/// Inserts a parent waiting for `acc` active children, then `children` under it the way the
/// engine does (so that a storage may link them to it). Returns the stored parent.
async fn family(
    s: &dyn TaskExecutionsStorage,
    parent_id: &str,
    acc: u32,
    children: &[&TaskExecutionStorageValue],
) -> Result<TaskExecutionStorageValue, Failure> {
    let mut parent = execution(parent_id, past());
    parent.status = TaskExecutionStatus::Running;
    s.insert_many(vec![parent.clone()]).await?;
    let update = TaskExecutionStorageUpdate {
        status: Some(TaskExecutionStatus::WaitingForChildren),
        children: Some(children.iter().map(|c| summary(&c.execution_id)).collect()),
        active_children_count: Some(acc),
        ..touch(parent.updated_at)
    };
    s.update_many_by_id_and_insert_children_if_updated(vec![
        UpdateByIdAndInsertChildrenIfUpdatedRequest {
            execution_id: parent_id.to_owned(),
            filters: None,
            update: update.clone(),
            children_task_executions_to_insert_if_any_updated: children
                .iter()
                .map(|c| (*c).clone())
                .collect(),
        },
    ])
    .await?;
    Ok(patched(&parent, &update))
}

fn request(limit: u32) -> UpdateAndDecrementParentActiveChildrenCountRequest {
    let at = past() + 50;
    UpdateAndDecrementParentActiveChildrenCountRequest {
        is_finished: true,
        close_status: CloseStatus::Ready,
        update: TaskExecutionStorageUpdate {
            close_status: Some(CloseStatus::Closed),
            closed_at: Some(at),
            ..touch(at)
        },
        limit,
    }
}

/// The parent as the decrement leaves it: `acc` and the update's `updatedAt`.
fn decremented(
    parent: &TaskExecutionStorageValue,
    acc: u32,
    request: &UpdateAndDecrementParentActiveChildrenCountRequest,
) -> TaskExecutionStorageValue {
    let mut parent = parent.clone();
    parent.active_children_count = acc;
    parent.updated_at = request.update.updated_at;
    parent
}

async fn run(
    s: &dyn TaskExecutionsStorage,
    request: &UpdateAndDecrementParentActiveChildrenCountRequest,
) -> Result<u32, Failure> {
    Ok(
        s.update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            request.clone(),
        )
        .await?,
    )
}

async fn decrements(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let c0 = done("p", "c0", 0, t);
    let mut c1 = child("p", "c1", 1, t);
    c1.status = TaskExecutionStatus::Running;
    let parent = family(&*s, "p", 2, &[&c0, &c1]).await?;
    let request = request(10);
    ensure_eq!(run(&*s, &request).await?, 1, "{OP} count");
    ensure_stored(&*s, &patched(&c0, &request.update)).await?;
    ensure_untouched(&*s, &[&c1]).await?;
    ensure_stored(&*s, &decremented(&parent, 1, &request)).await?;
    ensure_eq!(run(&*s, &request).await?, 0, "{OP} count once closed");
    ensure_eq!(
        must_get(&*s, "p").await?.active_children_count,
        1,
        "acc of p after a second call"
    );
    Ok(())
}

async fn nothing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        run(&*s, &request(10)).await?,
        0,
        "{OP} count on an empty storage"
    );
    let c = done("p", "c", 0, past());
    let parent = family(&*s, "p", 1, &[&c]).await?;
    ensure_eq!(run(&*s, &request(0)).await?, 0, "{OP} count with limit 0");
    ensure_untouched(&*s, &[&c, &parent]).await
}

async fn several_children(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let children: Vec<_> = (0..3)
        .map(|i| done("p", &format!("c{i}"), i, t + u64::from(i)))
        .collect();
    let parent = family(&*s, "p", 5, &children.iter().collect::<Vec<_>>()).await?;
    let other_child = done("q", "q-c0", 0, t);
    let other = family(&*s, "q", 4, &[&other_child]).await?;
    let request = request(10);
    ensure_eq!(run(&*s, &request).await?, 4, "{OP} count");
    ensure_stored(&*s, &decremented(&parent, 2, &request)).await?;
    ensure_stored(&*s, &decremented(&other, 3, &request)).await
}

async fn only_child(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let c = only(done("p", "c", 0, past()));
    let parent = family(&*s, "p", 3, &[&c]).await?;
    let request = request(10);
    ensure_eq!(run(&*s, &request).await?, 1, "{OP} count");
    ensure_stored(&*s, &decremented(&parent, 0, &request)).await
}

async fn finalize_child(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let c = finalize(done("p", "finalize", 0, past()));
    let parent = family(&*s, "p", 2, &[&c]).await?;
    let request = request(10);
    ensure_eq!(run(&*s, &request).await?, 1, "{OP} count");
    ensure_stored(&*s, &patched(&c, &request.update)).await?;
    ensure_untouched(&*s, &[&parent]).await
}

async fn floor_zero(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (c0, c1) = (done("p", "c0", 0, t), done("p", "c1", 1, t + 1));
    let parent = family(&*s, "p", 1, &[&c0, &c1]).await?;
    let request = request(10);
    ensure_eq!(run(&*s, &request).await?, 2, "{OP} count");
    ensure_stored(&*s, &decremented(&parent, 0, &request)).await
}

async fn root(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut root = done("unused", "root", 0, past());
    root.parent = None;
    root.root = None;
    s.insert_many(vec![root.clone()]).await?;
    let request = request(10);
    ensure_eq!(run(&*s, &request).await?, 1, "{OP} count");
    ensure_stored(&*s, &patched(&root, &request.update)).await
}

async fn two_shards(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 2;
    let backend = f.create().await?;
    let s = backend.client(options(TOTAL, &[], false)).await?;
    let parent_id = id_in_shard("p", 0, TOTAL);
    let t = past();
    let (c0, c1) = (
        done(&parent_id, &id_in_shard("c", 0, TOTAL), 0, t),
        done(&parent_id, &id_in_shard("c", 1, TOTAL), 1, t),
    );
    let parent = family(&*s, &parent_id, 3, &[&c0, &c1]).await?;
    let request = request(10);
    ensure_eq!(run(&*s, &request).await?, 2, "{OP} count");
    ensure_stored(&*s, &decremented(&parent, 1, &request)).await
}

async fn parent_unowned(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 2;
    let backend = f.create().await?;
    let writer = backend.client(options(TOTAL, &[], false)).await?;
    let closer = backend.client(options(TOTAL, &[1], false)).await?;
    let parent_id = id_in_shard("p", 0, TOTAL);
    let c = done(&parent_id, &id_in_shard("c", 1, TOTAL), 0, past());
    let parent = family(&*writer, &parent_id, 2, &[&c]).await?;
    let request = request(10);
    ensure_eq!(
        run(&*closer, &request).await?,
        1,
        "{OP} count by a client owning shard 1 only"
    );
    ensure_stored(&*writer, &decremented(&parent, 1, &request)).await
}

async fn recent(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (old, new) = (done("p", "old", 0, past()), done("p", "new", 1, future()));
    let parent = family(&*s, "p", 2, &[&new, &old]).await?;
    let request = request(10);
    ensure_eq!(
        run(&*s, &request).await?,
        1,
        "{OP} count (\"new\" has updatedAt after now)"
    );
    ensure_untouched(&*s, &[&new]).await?;
    ensure_stored(&*s, &decremented(&parent, 1, &request)).await
}

async fn mismatch(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let mut idle = done("p", "idle", 0, t);
    idle.close_status = CloseStatus::Idle;
    let mut closed = done("p", "closed", 1, t);
    closed.close_status = CloseStatus::Closed;
    let mut unfinished = done("p", "unfinished", 2, t);
    unfinished.is_finished = false;
    unfinished.status = TaskExecutionStatus::Running;
    let parent = family(&*s, "p", 3, &[&idle, &closed, &unfinished]).await?;
    ensure_eq!(
        run(&*s, &request(10)).await?,
        0,
        "{OP} count for finished children ready to close"
    );
    ensure_untouched(&*s, &[&idle, &closed, &unfinished, &parent]).await?;
    let mut for_unfinished = request(10);
    for_unfinished.is_finished = false;
    ensure_eq!(
        run(&*s, &for_unfinished).await?,
        1,
        "{OP} count for unfinished children ready to close"
    );
    ensure_stored(&*s, &decremented(&parent, 2, &for_unfinished)).await
}

async fn ordered(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (c, a, b, d) = (
        done("p", "c", 0, t + 2),
        done("p", "a", 1, t),
        done("p", "b", 2, t),
        done("p", "d", 3, t + 3),
    );
    let parent = family(&*s, "p", 4, &[&c, &a, &b, &d]).await?;
    let request = request(3);
    ensure_eq!(run(&*s, &request).await?, 3, "{OP} count with limit 3");
    for value in [&a, &b, &c] {
        ensure_stored(&*s, &patched(value, &request.update)).await?;
    }
    ensure_untouched(&*s, &[&d]).await?;
    ensure_stored(&*s, &decremented(&parent, 1, &request)).await
}

async fn limit_split(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 3;
    let backend = f.create().await?;
    let s = backend.client(options(TOTAL, &[0, 2], false)).await?;
    let t = past();
    let mut by_shard = Vec::new();
    for shard in 0..TOTAL {
        let mut values: Vec<_> = (0..3)
            .map(|i| {
                let mut value = done(
                    "none",
                    &id_in_shard(&format!("s{shard}-{i}"), shard, TOTAL),
                    0,
                    t + 10 - i,
                );
                value.parent = None;
                value
            })
            .collect();
        insert_in_order(&*s, &values.iter().collect::<Vec<_>>()).await?;
        values.reverse();
        by_shard.push(values);
    }
    // 3 over 2 owned shards: 2 per shard (rounding up), the earliest of each.
    let first = request(3);
    ensure_eq!(
        run(&*s, &first).await?,
        4,
        "{OP} count with limit 3 on shards [0, 2] of 3"
    );
    for shard in [0, 2] {
        for value in &by_shard[shard][..2] {
            ensure_stored(&*s, &patched(value, &first.update)).await?;
        }
    }
    ensure_untouched(
        &*s,
        &by_shard[1]
            .iter()
            .chain([&by_shard[0][2], &by_shard[2][2]])
            .collect::<Vec<_>>(),
    )
    .await?;
    // 1 over 2 shards: 1 each.
    ensure_eq!(
        run(&*s, &request(1)).await?,
        2,
        "{OP} count with limit 1 on shards [0, 2] of 3"
    );
    Ok(())
}

async fn unowned(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 2;
    let backend = f.create().await?;
    let writer = backend.client(options(TOTAL, &[], false)).await?;
    let closer = backend.client(options(TOTAL, &[1], false)).await?;
    let parent_id = id_in_shard("p", 1, TOTAL);
    let c = done(&parent_id, &id_in_shard("c", 0, TOTAL), 0, past());
    let parent = family(&*writer, &parent_id, 1, &[&c]).await?;
    ensure_eq!(
        run(&*closer, &request(10)).await?,
        0,
        "{OP} count by a client owning shard 1 only"
    );
    ensure_untouched(&*writer, &[&c, &parent]).await
}

async fn unset(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let c = with_unsettable(done("p", "c", 0, past()));
    let parent = family(&*s, "p", 2, &[&c]).await?;
    let removed = [
        UnsetField::ExecutorId,
        UnsetField::CloseExpiresAt,
        UnsetField::Error,
    ];
    let mut request = request(10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    ensure_eq!(run(&*s, &request).await?, 1, "{OP} count");
    let stored = must_get(&*s, "c").await?;
    ensure_unset(&stored, &removed)?;
    ensure_eq!(
        stored,
        patched(&c, &request.update),
        "{OP}: c after the update"
    );
    // The parent gets the count and updatedAt only, not the child's update.
    ensure_stored(&*s, &decremented(&parent, 1, &request)).await
}
