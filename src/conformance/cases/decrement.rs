//! `updateAndDecrementParentACCByIsFinishedAndCloseStatus`.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory, Window};
use crate::storage::{
    TaskExecutionStorageUpdate, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateAndDecrementParentActiveChildrenCountRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest,
};
use crate::task_executions::{CloseStatus, TaskExecutionStatus};

use super::case;
use super::claim::rekey;

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
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/updated_at_is_the_storage_now_whatever_was_sent", recent),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/is_finished_and_close_status_must_match", mismatch),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/ascending_updated_at_then_insertion_with_limit", ordered),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/limit_split_across_owned_shards", limit_split),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/unowned_shards_untouched", unowned),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/unset", unset),
        case!("updateAndDecrementParentACCByIsFinishedAndCloseStatus/parent_gets_the_storage_now", parent_now),
    ]
}

/// A finished child ready to be closed.
fn done(parent: &str, id: &str, index: u32) -> TaskExecutionStorageValue {
    let mut value = child(parent, id, index, past());
    value.status = TaskExecutionStatus::Completed;
    value.is_finished = true;
    value.output = Some("out".to_owned());
    value.finished_at = Some(past());
    value.close_status = CloseStatus::Ready;
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
/// engine does (so that a storage may link them to it). Returns the parent and the children
/// as stored.
async fn family(
    f: &dyn StorageFactory,
    s: &dyn TaskExecutionsStorage,
    parent_id: &str,
    acc: u32,
    children: &[&TaskExecutionStorageValue],
) -> Result<(TaskExecutionStorageValue, Vec<TaskExecutionStorageValue>), Failure> {
    let mut parent = execution(parent_id, past());
    parent.status = TaskExecutionStatus::Running;
    let parent = insert(f, s, &[&parent]).await?.remove(0);
    let update = TaskExecutionStorageUpdate {
        status: Some(TaskExecutionStatus::WaitingForChildren),
        children: Some(children.iter().map(|c| summary(&c.execution_id)).collect()),
        active_children_count: Some(acc),
        ..touch(past())
    };
    let window = Window::open(f, s);
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
    let window = window.close(s);
    let parent = ensure_patched(s, &parent, &update, &window).await?;
    let mut stored = Vec::with_capacity(children.len());
    for child in children {
        let got = must_get(s, &child.execution_id).await?;
        ensure_eq!(
            got,
            inserted_at(child, parent.updated_at),
            "child {} as stored",
            child.execution_id
        );
        stored.push(got);
    }
    Ok((parent, stored))
}

fn request(limit: u32) -> UpdateAndDecrementParentActiveChildrenCountRequest {
    UpdateAndDecrementParentActiveChildrenCountRequest {
        is_finished: true,
        close_status: CloseStatus::Ready,
        update: TaskExecutionStorageUpdate {
            close_status: Some(CloseStatus::Closed),
            closed_at: Some(past()),
            ..touch(past())
        },
        limit,
    }
}

/// The parent's part of the decrement: its count, and `updatedAt` (the storage's `now`).
fn decrement(acc: u32) -> TaskExecutionStorageUpdate {
    TaskExecutionStorageUpdate {
        active_children_count: Some(acc),
        ..touch(future())
    }
}

/// Fails unless the parent was decremented to `acc` (and got the call's `now`), nothing else.
async fn ensure_decremented(
    s: &dyn TaskExecutionsStorage,
    parent: &TaskExecutionStorageValue,
    acc: u32,
    window: &Window,
) -> CaseResult {
    ensure_patched(s, parent, &decrement(acc), window).await?;
    Ok(())
}

/// Lets the clock pass what the case wrote, then runs `request`; gives the count and the
/// call's window.
async fn run(
    f: &dyn StorageFactory,
    s: &dyn TaskExecutionsStorage,
    request: &UpdateAndDecrementParentActiveChildrenCountRequest,
) -> Result<(u32, Window), Failure> {
    settle().await;
    let window = Window::open(f, s);
    let count = s
        .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
            request.clone(),
        )
        .await?;
    Ok((count, window.close(s)))
}

/// Fails unless each of `children` was patched with `request`'s update in `window`.
async fn ensure_closed(
    s: &dyn TaskExecutionsStorage,
    children: &[&TaskExecutionStorageValue],
    request: &UpdateAndDecrementParentActiveChildrenCountRequest,
    window: &Window,
) -> CaseResult {
    for child in children {
        ensure_patched(s, child, &request.update, window).await?;
    }
    Ok(())
}

async fn decrements(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let c0 = done("p", "c0", 0);
    let mut c1 = child("p", "c1", 1, past());
    c1.status = TaskExecutionStatus::Running;
    let (parent, children) = family(f, &*s, "p", 2, &[&c0, &c1]).await?;
    let request = request(10);
    let (count, window) = run(f, &*s, &request).await?;
    ensure_eq!(count, 1, "{OP} count");
    ensure_closed(&*s, &[&children[0]], &request, &window).await?;
    ensure_untouched(&*s, &[&children[1]]).await?;
    ensure_decremented(&*s, &parent, 1, &window).await?;
    ensure_eq!(run(f, &*s, &request).await?.0, 0, "{OP} count once closed");
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
        run(f, &*s, &request(10)).await?.0,
        0,
        "{OP} count on an empty storage"
    );
    let (parent, children) = family(f, &*s, "p", 1, &[&done("p", "c", 0)]).await?;
    ensure_eq!(
        run(f, &*s, &request(0)).await?.0,
        0,
        "{OP} count with limit 0"
    );
    ensure_untouched(&*s, &[&children[0], &parent]).await
}

async fn several_children(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let children: Vec<_> = (0..3).map(|i| done("p", &format!("c{i}"), i)).collect();
    let (parent, _) = family(f, &*s, "p", 5, &children.iter().collect::<Vec<_>>()).await?;
    let (other, _) = family(f, &*s, "q", 4, &[&done("q", "q-c0", 0)]).await?;
    let request = request(10);
    let (count, window) = run(f, &*s, &request).await?;
    ensure_eq!(count, 4, "{OP} count");
    ensure_decremented(&*s, &parent, 2, &window).await?;
    ensure_decremented(&*s, &other, 3, &window).await
}

async fn only_child(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (parent, _) = family(f, &*s, "p", 3, &[&only(done("p", "c", 0))]).await?;
    let (count, window) = run(f, &*s, &request(10)).await?;
    ensure_eq!(count, 1, "{OP} count");
    ensure_decremented(&*s, &parent, 0, &window).await
}

async fn finalize_child(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (parent, children) = family(f, &*s, "p", 2, &[&finalize(done("p", "finalize", 0))]).await?;
    let request = request(10);
    let (count, window) = run(f, &*s, &request).await?;
    ensure_eq!(count, 1, "{OP} count");
    ensure_closed(&*s, &[&children[0]], &request, &window).await?;
    ensure_untouched(&*s, &[&parent]).await
}

async fn floor_zero(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (c0, c1) = (done("p", "c0", 0), done("p", "c1", 1));
    let (parent, _) = family(f, &*s, "p", 1, &[&c0, &c1]).await?;
    let (count, window) = run(f, &*s, &request(10)).await?;
    ensure_eq!(count, 2, "{OP} count");
    ensure_decremented(&*s, &parent, 0, &window).await
}

async fn root(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut root = done("unused", "root", 0);
    root.parent = None;
    root.root = None;
    let root = insert(f, &*s, &[&root]).await?.remove(0);
    let request = request(10);
    let (count, window) = run(f, &*s, &request).await?;
    ensure_eq!(count, 1, "{OP} count");
    ensure_closed(&*s, &[&root], &request, &window).await
}

async fn two_shards(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 2;
    let backend = f.create().await?;
    let s = backend.client(options(TOTAL, &[], false)).await?;
    let parent_id = id_in_shard("p", 0, TOTAL);
    let (c0, c1) = (
        done(&parent_id, &id_in_shard("c", 0, TOTAL), 0),
        done(&parent_id, &id_in_shard("c", 1, TOTAL), 1),
    );
    let (parent, _) = family(f, &*s, &parent_id, 3, &[&c0, &c1]).await?;
    let (count, window) = run(f, &*s, &request(10)).await?;
    ensure_eq!(count, 2, "{OP} count");
    ensure_decremented(&*s, &parent, 1, &window).await
}

async fn parent_unowned(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 2;
    let backend = f.create().await?;
    let writer = backend.client(options(TOTAL, &[], false)).await?;
    let closer = backend.client(options(TOTAL, &[1], false)).await?;
    let parent_id = id_in_shard("p", 0, TOTAL);
    let c = done(&parent_id, &id_in_shard("c", 1, TOTAL), 0);
    let (parent, _) = family(f, &*writer, &parent_id, 2, &[&c]).await?;
    let (count, window) = run(f, &*closer, &request(10)).await?;
    ensure_eq!(count, 1, "{OP} count by a client owning shard 1 only");
    ensure_decremented(&*writer, &parent, 1, &window).await
}

/// Children written by a client far ahead and one far behind: both get the storage's `now`
/// as `updatedAt`, so both are closed once the clock has passed it.
async fn recent(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (mut ahead, mut behind) = (done("p", "ahead", 0), done("p", "behind", 1));
    ahead.updated_at = future();
    behind.updated_at = past();
    let (parent, children) = family(f, &*s, "p", 3, &[&ahead, &behind]).await?;
    let request = request(10);
    let (count, window) = run(f, &*s, &request).await?;
    ensure_eq!(
        count,
        2,
        "{OP} count (updatedAt sent far ahead and long ago)"
    );
    ensure_closed(&*s, &children.iter().collect::<Vec<_>>(), &request, &window).await?;
    ensure_decremented(&*s, &parent, 1, &window).await
}

async fn mismatch(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut idle = done("p", "idle", 0);
    idle.close_status = CloseStatus::Idle;
    let mut closed = done("p", "closed", 1);
    closed.close_status = CloseStatus::Closed;
    let mut unfinished = done("p", "unfinished", 2);
    unfinished.is_finished = false;
    unfinished.status = TaskExecutionStatus::Running;
    let (parent, children) = family(f, &*s, "p", 3, &[&idle, &closed, &unfinished]).await?;
    ensure_eq!(
        run(f, &*s, &request(10)).await?.0,
        0,
        "{OP} count for finished children ready to close"
    );
    ensure_untouched(&*s, &children.iter().chain([&parent]).collect::<Vec<_>>()).await?;
    let mut for_unfinished = request(10);
    for_unfinished.is_finished = false;
    let (count, window) = run(f, &*s, &for_unfinished).await?;
    ensure_eq!(
        count,
        1,
        "{OP} count for unfinished children ready to close"
    );
    ensure_closed(&*s, &[&children[2]], &for_unfinished, &window).await?;
    ensure_decremented(&*s, &parent, 2, &window).await
}

/// Inserted with their parent in the order c, a, b, d (one `updatedAt`), then c and d
/// touched: the key order a = b < c < d is not the insertion order.
async fn ordered(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let sent = [
        done("p", "c", 0),
        done("p", "a", 1),
        done("p", "b", 2),
        done("p", "d", 3),
    ];
    let (parent, children) = family(f, &*s, "p", 4, &sent.iter().collect::<Vec<_>>()).await?;
    let c = rekey(f, &*s, &[&children[0]]).await?.remove(0);
    let d = rekey(f, &*s, &[&children[3]]).await?.remove(0);
    let request = request(3);
    let (count, window) = run(f, &*s, &request).await?;
    ensure_eq!(count, 3, "{OP} count with limit 3");
    ensure_closed(&*s, &[&children[1], &children[2], &c], &request, &window).await?;
    ensure_untouched(&*s, &[&d]).await?;
    ensure_decremented(&*s, &parent, 1, &window).await
}

async fn limit_split(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 3;
    let backend = f.create().await?;
    let s = backend.client(options(TOTAL, &[0, 2], false)).await?;
    let mut by_shard = Vec::new();
    for shard in 0..TOTAL {
        let values: Vec<_> = (0..3)
            .map(|i| {
                let mut value = done(
                    "none",
                    &id_in_shard(&format!("s{shard}-{i}"), shard, TOTAL),
                    0,
                );
                value.parent = None;
                value
            })
            .collect();
        by_shard.push(insert_in_order(f, &*s, &values.iter().collect::<Vec<_>>()).await?);
    }
    // Rekeyed in descending order: in each shard, the third is the earliest, then the second.
    let mut earliest: Vec<Vec<TaskExecutionStorageValue>> = vec![Vec::new(); 3];
    for i in (0..3).rev() {
        let rekeyed = rekey(
            f,
            &*s,
            &by_shard.iter().map(|values| &values[i]).collect::<Vec<_>>(),
        )
        .await?;
        for (shard, value) in rekeyed.into_iter().enumerate() {
            earliest[shard].push(value);
        }
    }
    // 3 over 2 owned shards: 2 per shard (rounding up), the earliest of each.
    let first = request(3);
    let (count, window) = run(f, &*s, &first).await?;
    ensure_eq!(count, 4, "{OP} count with limit 3 on shards [0, 2] of 3");
    for shard in [0, 2] {
        ensure_closed(
            &*s,
            &earliest[shard][..2].iter().collect::<Vec<_>>(),
            &first,
            &window,
        )
        .await?;
    }
    ensure_untouched(
        &*s,
        &earliest[1]
            .iter()
            .chain([&earliest[0][2], &earliest[2][2]])
            .collect::<Vec<_>>(),
    )
    .await?;
    // 1 over 2 shards: 1 each.
    ensure_eq!(
        run(f, &*s, &request(1)).await?.0,
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
    let c = done(&parent_id, &id_in_shard("c", 0, TOTAL), 0);
    let (parent, children) = family(f, &*writer, &parent_id, 1, &[&c]).await?;
    ensure_eq!(
        run(f, &*closer, &request(10)).await?.0,
        0,
        "{OP} count by a client owning shard 1 only"
    );
    ensure_untouched(&*writer, &[&children[0], &parent]).await
}

async fn unset(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let c = with_unsettable(done("p", "c", 0));
    let (parent, children) = family(f, &*s, "p", 2, &[&c]).await?;
    let removed = [
        UnsetField::ExecutorId,
        UnsetField::CloseExpiresAt,
        UnsetField::Error,
    ];
    let mut request = request(10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    let (count, window) = run(f, &*s, &request).await?;
    ensure_eq!(count, 1, "{OP} count");
    ensure_closed(&*s, &[&children[0]], &request, &window).await?;
    ensure_unset(&must_get(&*s, "c").await?, &removed)?;
    // The parent gets the count and updatedAt only, not the child's update.
    ensure_decremented(&*s, &parent, 1, &window).await
}

/// The parent's `updatedAt` is the storage's `now` of the call (the child's), whatever the
/// update sent: far ahead here.
async fn parent_now(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (parent, _) = family(f, &*s, "p", 2, &[&done("p", "c", 0)]).await?;
    let mut request = request(10);
    request.update.updated_at = future();
    let (count, window) = run(f, &*s, &request).await?;
    ensure_eq!(count, 1, "{OP} count");
    let child = must_get(&*s, "c").await?;
    let stored = must_get(&*s, "p").await?;
    window.ensure_contains(stored.updated_at, "updatedAt of the parent")?;
    ensure_eq!(
        stored.updated_at,
        child.updated_at,
        "updatedAt of the parent: the now of its child's close"
    );
    ensure_decremented(&*s, &parent, 1, &window).await
}
