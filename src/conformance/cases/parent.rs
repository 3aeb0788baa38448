//! `getManyByParentExecutionId`, `updateManyByParentExecutionIdAndIsFinished`.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory, Window};
use crate::storage::{
    GetByParentExecutionIdRequest, TaskExecutionStorageUpdate, TaskExecutionStorageValue,
    TaskExecutionsStorage, UpdateByParentExecutionIdAndIsFinishedRequest,
};
use crate::task_executions::TaskExecutionStatus;

use super::case;

const GET: &str = "getManyByParentExecutionId";
const UPDATE: &str = "updateManyByParentExecutionIdAndIsFinished";

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "getManyByParentExecutionId/children_per_request_in_request_order",
            get_in_order
        ),
        case!("getManyByParentExecutionId/empty_request", get_empty),
        case!(
            "getManyByParentExecutionId/not_found_gives_no_children",
            get_not_found
        ),
        case!(
            "getManyByParentExecutionId/finished_and_unfinished_children",
            get_finished_and_not
        ),
        case!(
            "getManyByParentExecutionId/ignores_shards",
            get_ignores_shards
        ),
        case!(
            "updateManyByParentExecutionIdAndIsFinished/patches_the_children_with_is_finished",
            update_patches
        ),
        case!(
            "updateManyByParentExecutionIdAndIsFinished/empty_request",
            update_empty
        ),
        case!(
            "updateManyByParentExecutionIdAndIsFinished/not_found_is_skipped",
            update_not_found
        ),
        case!(
            "updateManyByParentExecutionIdAndIsFinished/other_parents_untouched",
            update_other_parents
        ),
        case!(
            "updateManyByParentExecutionIdAndIsFinished/ignores_shards",
            update_ignores_shards
        ),
        case!(
            "updateManyByParentExecutionIdAndIsFinished/unset",
            update_unset
        ),
    ]
}

fn by_parent(id: &str) -> GetByParentExecutionIdRequest {
    GetByParentExecutionIdRequest {
        parent_execution_id: id.to_owned(),
    }
}

fn finished(mut value: TaskExecutionStorageValue) -> TaskExecutionStorageValue {
    value.status = TaskExecutionStatus::Completed;
    value.is_finished = true;
    value.output = Some("out".to_owned());
    value
}

/// The children lists, each sorted by execution id: the order within a list is not part of
/// the contract.
async fn children_lists(
    s: &dyn TaskExecutionsStorage,
    parents: &[&str],
) -> Result<Vec<Vec<TaskExecutionStorageValue>>, Failure> {
    let mut lists = s
        .get_many_by_parent_execution_id(parents.iter().map(|p| by_parent(p)).collect())
        .await?;
    for list in &mut lists {
        list.sort_by(|a, b| a.execution_id.cmp(&b.execution_id));
    }
    Ok(lists)
}

async fn get_in_order(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (p, q) = (execution("p", t), execution("q", t));
    let stored = insert(
        f,
        &*s,
        &[
            &p,
            &q,
            &finished(child("p", "p-c1", 1, t)),
            &child("q", "q-c0", 0, t),
            &child("p", "p-c0", 0, t),
        ],
    )
    .await?;
    let (p1, q0, p0) = (stored[2].clone(), stored[3].clone(), stored[4].clone());
    let lists = children_lists(&*s, &["q", "missing", "p", "q"]).await?;
    ensure_eq!(
        lists,
        vec![vec![q0.clone()], vec![], vec![p0, p1], vec![q0]],
        "{GET} answers"
    );
    Ok(())
}

async fn get_empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![execution("p", past()), child("p", "c", 0, past())])
        .await?;
    ensure_eq!(
        s.get_many_by_parent_execution_id(Vec::new()).await?,
        Vec::<Vec<_>>::new(),
        "{GET} answers"
    );
    Ok(())
}

async fn get_not_found(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        children_lists(&*s, &["p"]).await?,
        vec![vec![]],
        "{GET} on an empty storage"
    );
    // A child's own id and an execution without children give no children.
    s.insert_many(vec![
        execution("p", past()),
        execution("lonely", past()),
        child("p", "c", 0, past()),
    ])
    .await?;
    ensure_eq!(
        children_lists(&*s, &["c", "lonely"]).await?,
        vec![vec![], vec![]],
        "{GET} for executions without children"
    );
    Ok(())
}

async fn get_finished_and_not(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let value = child("p", &format!("c{i}"), i, t);
            if i % 2 == 0 {
                finished(value)
            } else {
                value
            }
        })
        .collect();
    let children = insert(f, &*s, &children.iter().collect::<Vec<_>>()).await?;
    ensure_eq!(
        children_lists(&*s, &["p"]).await?,
        vec![children],
        "{GET} answer"
    );
    Ok(())
}

async fn get_ignores_shards(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 3;
    let backend = f.create().await?;
    let writer = backend.client(options(TOTAL, &[], false)).await?;
    let reader = backend.client(options(TOTAL, &[1], false)).await?;
    let children: Vec<_> = (0..TOTAL)
        .map(|shard| child("p", &id_in_shard("c", shard, TOTAL), shard, past()))
        .collect();
    let mut children = insert(f, &*writer, &children.iter().collect::<Vec<_>>()).await?;
    children.sort_by(|a, b| a.execution_id.cmp(&b.execution_id));
    ensure_eq!(
        children_lists(&*reader, &["p"]).await?,
        vec![children],
        "{GET} by a client owning shard 1 only"
    );
    Ok(())
}

fn request(
    parent: &str,
    is_finished: bool,
    update: TaskExecutionStorageUpdate,
) -> UpdateByParentExecutionIdAndIsFinishedRequest {
    UpdateByParentExecutionIdAndIsFinishedRequest {
        parent_execution_id: parent.to_owned(),
        is_finished,
        update,
    }
}

/// Cancels unfinished children: also makes them finished, which must not patch them twice or
/// skip any.
fn cancel(at: u64) -> TaskExecutionStorageUpdate {
    TaskExecutionStorageUpdate {
        status: Some(TaskExecutionStatus::Cancelled),
        is_finished: Some(true),
        needs_promise_cancellation: Some(true),
        finished_at: Some(at),
        ..touch(at)
    }
}

async fn update_patches(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let stored = insert(
        f,
        &*s,
        &[
            &execution("p", t),
            &child("p", "c0", 0, t),
            &finished(child("p", "c1", 1, t)),
            &child("p", "c2", 2, t),
        ],
    )
    .await?;
    let (p, c0, c1, c2) = (&stored[0], &stored[1], &stored[2], &stored[3]);
    let update = cancel(future());
    let window = Window::open(f, &*s);
    s.update_many_by_parent_execution_id_and_is_finished(vec![request("p", false, update.clone())])
        .await?;
    let window = window.close(&*s);
    let c0 = ensure_patched(&*s, c0, &update, &window).await?;
    let c2 = ensure_patched(&*s, c2, &update, &window).await?;
    ensure_untouched(&*s, &[c1, p]).await?;
    let close = TaskExecutionStorageUpdate {
        close_status: Some(crate::task_executions::CloseStatus::Ready),
        ..touch(t + 60)
    };
    let window = Window::open(f, &*s);
    s.update_many_by_parent_execution_id_and_is_finished(vec![request("p", true, close.clone())])
        .await?;
    let window = window.close(&*s);
    for value in [&c0, c1, &c2] {
        ensure_patched(&*s, value, &close, &window).await?;
    }
    Ok(())
}

async fn update_empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let c = insert(f, &*s, &[&child("p", "c", 0, past())]).await?;
    s.update_many_by_parent_execution_id_and_is_finished(Vec::new())
        .await?;
    ensure_untouched(&*s, &c.iter().collect::<Vec<_>>()).await
}

async fn update_not_found(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let c = insert(f, &*s, &[&child("p", "c", 0, past())])
        .await?
        .remove(0);
    let update = cancel(past() + 50);
    let window = Window::open(f, &*s);
    s.update_many_by_parent_execution_id_and_is_finished(vec![
        request("missing", false, update.clone()),
        request("p", false, update.clone()),
    ])
    .await?;
    let window = window.close(&*s);
    ensure!(
        get(&*s, "missing").await?.is_none(),
        "{UPDATE} inserted the missing parent"
    );
    ensure_patched(&*s, &c, &update, &window).await?;
    Ok(())
}

async fn update_other_parents(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let stored = insert(
        f,
        &*s,
        &[
            &child("p", "mine", 0, t),
            &child("q", "theirs", 0, t),
            &execution("root", t),
        ],
    )
    .await?;
    let update = cancel(t + 50);
    let window = Window::open(f, &*s);
    s.update_many_by_parent_execution_id_and_is_finished(vec![request("p", false, update.clone())])
        .await?;
    let window = window.close(&*s);
    ensure_patched(&*s, &stored[0], &update, &window).await?;
    ensure_untouched(&*s, &[&stored[1], &stored[2]]).await
}

async fn update_ignores_shards(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 3;
    let backend = f.create().await?;
    let writer = backend.client(options(TOTAL, &[], false)).await?;
    let updater = backend.client(options(TOTAL, &[2], false)).await?;
    let children: Vec<_> = (0..TOTAL)
        .map(|shard| child("p", &id_in_shard("c", shard, TOTAL), shard, past()))
        .collect();
    let children = insert(f, &*writer, &children.iter().collect::<Vec<_>>()).await?;
    let update = cancel(past() + 50);
    let window = Window::open(f, &*updater);
    updater
        .update_many_by_parent_execution_id_and_is_finished(vec![request(
            "p",
            false,
            update.clone(),
        )])
        .await?;
    let window = window.close(&*updater);
    for value in &children {
        ensure_patched(&*writer, value, &update, &window).await?;
    }
    Ok(())
}

async fn update_unset(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let c = insert(f, &*s, &[&with_unsettable(child("p", "c", 0, past()))])
        .await?
        .remove(0);
    let removed = [
        UnsetField::ExpiresAt,
        UnsetField::StartedAt,
        UnsetField::OnChildrenFinishedProcessingExpiresAt,
    ];
    let update = TaskExecutionStorageUpdate {
        unset: Some(UnsetField::all_of(&removed)),
        ..cancel(past() + 50)
    };
    let window = Window::open(f, &*s);
    s.update_many_by_parent_execution_id_and_is_finished(vec![request("p", false, update.clone())])
        .await?;
    let window = window.close(&*s);
    let stored = ensure_patched(&*s, &c, &update, &window).await?;
    ensure_unset(&stored, &removed)
}
