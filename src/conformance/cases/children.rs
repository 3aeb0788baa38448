//! `updateManyByIdAndInsertChildrenIfUpdated`.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory, Window, EXPIRY_GRACE_MS};
use crate::storage::{
    GetByParentExecutionIdRequest, StorageError, TaskExecutionStorageUpdate,
    TaskExecutionStorageValue, TaskExecutionsStorage, UpdateByIdAndInsertChildrenIfUpdatedRequest,
};
use crate::task_executions::{TaskExecutionFilters, TaskExecutionStatus};

use super::case;
use super::update_by_id::running_update;

pub fn cases() -> Vec<Case> {
    vec![
        case!("updateManyByIdAndInsertChildrenIfUpdated/patches_and_inserts_children", patches_and_inserts),
        case!("updateManyByIdAndInsertChildrenIfUpdated/empty_request", empty),
        case!("updateManyByIdAndInsertChildrenIfUpdated/not_found_inserts_no_children", not_found),
        case!("updateManyByIdAndInsertChildrenIfUpdated/filter_is_sleeping_task", filter_is_sleeping_task),
        case!("updateManyByIdAndInsertChildrenIfUpdated/filter_status", filter_status),
        case!("updateManyByIdAndInsertChildrenIfUpdated/filter_is_finished", filter_is_finished),
        case!("updateManyByIdAndInsertChildrenIfUpdated/without_children", without_children),
        case!("updateManyByIdAndInsertChildrenIfUpdated/existing_child_refuses_the_whole_request", existing_child),
        case!("updateManyByIdAndInsertChildrenIfUpdated/child_repeated_refuses_the_whole_request", repeated_child),
        case!("updateManyByIdAndInsertChildrenIfUpdated/existing_sleeping_task_unique_id_refuses_the_whole_request", existing_unique_id),
        case!("updateManyByIdAndInsertChildrenIfUpdated/children_go_to_their_shards", children_in_shards),
        case!("updateManyByIdAndInsertChildrenIfUpdated/unset", unset),
        case!("updateManyByIdAndInsertChildrenIfUpdated/children_get_the_now_of_their_parent_patch", children_now),
    ]
}

fn request(
    id: &str,
    filters: Option<TaskExecutionFilters>,
    update: TaskExecutionStorageUpdate,
    children: Vec<TaskExecutionStorageValue>,
) -> UpdateByIdAndInsertChildrenIfUpdatedRequest {
    UpdateByIdAndInsertChildrenIfUpdatedRequest {
        execution_id: id.to_owned(),
        filters,
        update,
        children_task_executions_to_insert_if_any_updated: children,
    }
}

fn waiting(at: u64, children: usize) -> TaskExecutionStorageUpdate {
    TaskExecutionStorageUpdate {
        status: Some(TaskExecutionStatus::WaitingForChildren),
        waiting_for_children_started_at: Some(at),
        children: Some((0..children).map(|i| summary(&format!("c{i}"))).collect()),
        active_children_count: Some(u32::try_from(children).unwrap_or(u32::MAX)),
        ..touch(at)
    }
}

fn children_of(parent: &str, count: u32) -> Vec<TaskExecutionStorageValue> {
    (0..count)
        .map(|i| child(parent, &format!("{parent}-c{i}"), i, past()))
        .collect()
}

/// Fails unless every child is stored as inserted at `now` (that of its parent's patch).
async fn ensure_children_inserted(
    s: &dyn TaskExecutionsStorage,
    children: &[TaskExecutionStorageValue],
    now: u64,
) -> CaseResult {
    for child in children {
        ensure_stored(s, &inserted_at(child, now)).await?;
    }
    Ok(())
}

async fn children_stored(
    s: &dyn TaskExecutionsStorage,
    parent: &str,
) -> Result<Vec<String>, Failure> {
    let mut lists = s
        .get_many_by_parent_execution_id(vec![GetByParentExecutionIdRequest {
            parent_execution_id: parent.to_owned(),
        }])
        .await?;
    let mut children = ids(&lists.pop().unwrap_or_default());
    children.sort();
    Ok(children)
}

async fn patches_and_inserts(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert(
        f,
        &*s,
        &[
            &execution("p", past()),
            &execution("q", past()),
            &execution("other", past()),
        ],
    )
    .await?;
    let (p_children, q_children) = (children_of("p", 2), children_of("q", 1));
    let (p_update, q_update) = (waiting(past() + 5, 2), waiting(future(), 1));
    let window = Window::open(f, &*s);
    s.update_many_by_id_and_insert_children_if_updated(vec![
        request("p", None, p_update.clone(), p_children.clone()),
        request("q", None, q_update.clone(), q_children.clone()),
    ])
    .await?;
    let window = window.close(&*s);
    let p = ensure_patched(&*s, &stored[0], &p_update, &window).await?;
    let q = ensure_patched(&*s, &stored[1], &q_update, &window).await?;
    ensure_eq!(q.updated_at, p.updated_at, "one now for the call");
    ensure_untouched(&*s, &[&stored[2]]).await?;
    ensure_children_inserted(&*s, &[p_children, q_children].concat(), p.updated_at).await?;
    ensure_eq!(
        children_stored(&*s, "p").await?,
        strings(&["p-c0", "p-c1"]),
        "children of p"
    );
    ensure_eq!(
        children_stored(&*s, "q").await?,
        strings(&["q-c0"]),
        "children of q"
    );
    Ok(())
}

async fn empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let p = insert(f, &*s, &[&execution("p", past())]).await?;
    s.update_many_by_id_and_insert_children_if_updated(Vec::new())
        .await?;
    ensure_untouched(&*s, &p.iter().collect::<Vec<_>>()).await
}

async fn not_found(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let p = insert(f, &*s, &[&execution("p", past())]).await?.remove(0);
    let update = waiting(past() + 5, 1);
    let window = Window::open(f, &*s);
    s.update_many_by_id_and_insert_children_if_updated(vec![
        request("missing", None, update.clone(), children_of("missing", 2)),
        request("p", None, update.clone(), children_of("p", 1)),
    ])
    .await?;
    let window = window.close(&*s);
    ensure!(
        get(&*s, "missing").await?.is_none(),
        "the missing parent was inserted"
    );
    for id in ["missing-c0", "missing-c1"] {
        ensure!(
            get(&*s, id).await?.is_none(),
            "child {id} of a missing parent was inserted"
        );
    }
    let p = ensure_patched(&*s, &p, &update, &window).await?;
    ensure_children_inserted(&*s, &children_of("p", 1), p.updated_at).await?;
    ensure_eq!(
        children_stored(&*s, "p").await?,
        strings(&["p-c0"]),
        "children of p"
    );
    Ok(())
}

/// With a mismatching then a matching filter: children only after the match.
async fn check_filter(
    f: &dyn StorageFactory,
    parent: TaskExecutionStorageValue,
    mismatching: TaskExecutionFilters,
    matching: TaskExecutionFilters,
) -> CaseResult {
    let s = storage(f, single()).await?;
    let id = parent.execution_id.clone();
    let parent = insert(f, &*s, &[&parent]).await?.remove(0);
    let update = waiting(past() + 5, 2);
    let children = children_of(&id, 2);
    s.update_many_by_id_and_insert_children_if_updated(vec![request(
        &id,
        Some(mismatching.clone()),
        update.clone(),
        children.clone(),
    )])
    .await?;
    ensure_untouched(&*s, &[&parent]).await?;
    ensure_eq!(
        children_stored(&*s, &id).await?,
        Vec::<String>::new(),
        "children after filters {mismatching:?}"
    );
    let window = Window::open(f, &*s);
    s.update_many_by_id_and_insert_children_if_updated(vec![request(
        &id,
        Some(matching.clone()),
        update.clone(),
        children.clone(),
    )])
    .await?;
    let window = window.close(&*s);
    let parent = ensure_patched(&*s, &parent, &update, &window).await?;
    ensure_children_inserted(&*s, &children, parent.updated_at).await
}

async fn filter_is_sleeping_task(f: &dyn StorageFactory) -> CaseResult {
    check_filter(
        f,
        execution("p", past()),
        filters(Some(true), None, None),
        filters(Some(false), None, None),
    )
    .await
}

async fn filter_status(f: &dyn StorageFactory) -> CaseResult {
    let mut parent = execution("p", past());
    parent.status = TaskExecutionStatus::Running;
    let running = Some(TaskExecutionStatus::Running);
    check_filter(
        f,
        parent,
        filters(None, Some(TaskExecutionStatus::Ready), None),
        filters(None, running, None),
    )
    .await
}

async fn filter_is_finished(f: &dyn StorageFactory) -> CaseResult {
    check_filter(
        f,
        execution("p", past()),
        filters(None, None, Some(true)),
        filters(None, None, Some(false)),
    )
    .await
}

async fn without_children(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let p = insert(f, &*s, &[&execution("p", past())]).await?.remove(0);
    let update = running_update(past() + 5);
    let window = Window::open(f, &*s);
    s.update_many_by_id_and_insert_children_if_updated(vec![request(
        "p",
        None,
        update.clone(),
        Vec::new(),
    )])
    .await?;
    let window = window.close(&*s);
    ensure_patched(&*s, &p, &update, &window).await?;
    Ok(())
}

fn ensure_already_exists(result: Result<(), StorageError>) -> CaseResult {
    match result {
        Err(error) if error.is_already_exists() => Ok(()),
        Err(error) => Err(Failure::new(format!("expected AlreadyExists, got {error}"))),
        Ok(()) => Err(Failure::new("expected AlreadyExists, the call succeeded")),
    }
}

/// After a refused request: both parents unpatched and no child of theirs stored.
async fn ensure_nothing_applied(
    s: &dyn TaskExecutionsStorage,
    parents: &[&TaskExecutionStorageValue],
    new_children: &[&str],
) -> CaseResult {
    ensure_untouched(s, parents).await?;
    for id in new_children {
        ensure!(
            get(s, id).await?.is_none(),
            "child {id} of the refused request was stored"
        );
    }
    Ok(())
}

async fn existing_child(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert(
        f,
        &*s,
        &[
            &execution("p", past()),
            &execution("q", past()),
            &execution("taken", past()),
        ],
    )
    .await?;
    let (p, q, taken) = (&stored[0], &stored[1], &stored[2]);
    let mut clash = child("q", "taken", 1, past());
    clash.input = "other".to_owned();
    let result = s
        .update_many_by_id_and_insert_children_if_updated(vec![
            request("p", None, waiting(past() + 5, 1), children_of("p", 1)),
            request(
                "q",
                None,
                waiting(past() + 5, 2),
                vec![child("q", "q-c0", 0, past()), clash],
            ),
        ])
        .await;
    ensure_already_exists(result)?;
    ensure_nothing_applied(&*s, &[p, q, taken], &["p-c0", "q-c0"]).await
}

async fn repeated_child(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert(f, &*s, &[&execution("p", past()), &execution("q", past())]).await?;
    let (p, q) = (&stored[0], &stored[1]);
    let result = s
        .update_many_by_id_and_insert_children_if_updated(vec![
            request(
                "p",
                None,
                waiting(past() + 5, 1),
                vec![child("p", "same", 0, past())],
            ),
            request(
                "q",
                None,
                waiting(past() + 5, 1),
                vec![child("q", "same", 0, past())],
            ),
        ])
        .await;
    ensure_already_exists(result)?;
    ensure_nothing_applied(&*s, &[p, q], &["same"]).await
}

async fn existing_unique_id(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert(
        f,
        &*s,
        &[
            &execution("p", past()),
            &sleeping("asleep", "unique", past()),
        ],
    )
    .await?;
    let (p, asleep) = (&stored[0], &stored[1]);
    let mut clash = child("p", "p-c1", 1, past());
    clash.is_sleeping_task = true;
    clash.sleeping_task_unique_id = Some("unique".to_owned());
    let result = s
        .update_many_by_id_and_insert_children_if_updated(vec![request(
            "p",
            None,
            waiting(past() + 5, 2),
            vec![child("p", "p-c0", 0, past()), clash],
        )])
        .await;
    ensure_already_exists(result)?;
    ensure_nothing_applied(&*s, &[p, asleep], &["p-c0", "p-c1"]).await
}

/// Each child lands in its own shard: a client owning one shard claims exactly its children.
async fn children_in_shards(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 3;
    let backend = f.create().await?;
    let writer = backend.client(options(TOTAL, &[], false)).await?;
    let parent_id = id_in_shard("p", 0, TOTAL);
    let mut parent = execution(&parent_id, past());
    parent.status = TaskExecutionStatus::Running;
    writer.insert_many(vec![parent]).await?;
    let children: Vec<_> = (0..TOTAL)
        .map(|shard| {
            child(
                &parent_id,
                &id_in_shard("child", shard, TOTAL),
                shard,
                past(),
            )
        })
        .collect();
    writer
        .update_many_by_id_and_insert_children_if_updated(vec![request(
            &parent_id,
            None,
            waiting(past() + 5, 3),
            children.clone(),
        )])
        .await?;
    settle().await;
    for (shard, child) in (0..TOTAL).zip(&children) {
        let claimer = backend.client(options(TOTAL, &[shard], false)).await?;
        let claimed = claimer
            .update_by_status_and_start_at_less_than_and_return(
                crate::storage::UpdateByStatusAndStartAtLessThanRequest {
                    status: TaskExecutionStatus::Ready,
                    start_at_less_than: future(),
                    update: TaskExecutionStorageUpdate {
                        status: Some(TaskExecutionStatus::Running),
                        ..touch(past() + 10)
                    },
                    update_expires_at_with_started_at: past() + 10,
                    limit: 10,
                },
            )
            .await?;
        ensure_eq!(
            ids(&claimed),
            vec![child.execution_id.clone()],
            "children claimed from shard {shard}"
        );
    }
    Ok(())
}

async fn unset(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let p = insert(f, &*s, &[&with_unsettable(execution("p", past()))])
        .await?
        .remove(0);
    let removed = [
        UnsetField::ExecutorId,
        UnsetField::Error,
        UnsetField::CloseExpiresAt,
    ];
    let update = TaskExecutionStorageUpdate {
        unset: Some(UnsetField::all_of(&removed)),
        ..waiting(past() + 5, 1)
    };
    let window = Window::open(f, &*s);
    s.update_many_by_id_and_insert_children_if_updated(vec![request(
        "p",
        None,
        update.clone(),
        children_of("p", 1),
    )])
    .await?;
    let window = window.close(&*s);
    let stored = ensure_patched(&*s, &p, &update, &window).await?;
    ensure_unset(&stored, &removed)
}

/// Children sent by a client far behind and one far ahead get the storage's times of the
/// call that inserts them: the `now` of their parent's patch.
async fn children_now(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let p = insert(f, &*s, &[&execution("p", past())]).await?.remove(0);
    let mut behind = super::insert::with_every_stamp("behind", past());
    let mut ahead = super::insert::with_every_stamp("ahead", future());
    ahead.expires_at = Some(past());
    for (index, child) in [&mut behind, &mut ahead].into_iter().enumerate() {
        let link = crate::storage::ParentTaskExecutionSummary {
            task_id: "task".to_owned(),
            execution_id: "p".to_owned(),
            index_in_parent_children: u32::try_from(index).unwrap_or(0),
            is_only_child_of_parent: false,
            is_finalize_of_parent: false,
        };
        child.parent = Some(link);
    }
    let update = waiting(future(), 2);
    settle().await;
    let window = Window::open(f, &*s);
    s.update_many_by_id_and_insert_children_if_updated(vec![request(
        "p",
        None,
        update.clone(),
        vec![behind.clone(), ahead.clone()],
    )])
    .await?;
    let window = window.close(&*s);
    let p = ensure_patched(&*s, &p, &update, &window).await?;
    let now = p.updated_at;
    for id in ["behind", "ahead"] {
        super::insert::ensure_now_fields(&must_get(&*s, id).await?, now)?;
    }
    ensure_eq!(
        must_get(&*s, "ahead").await?.expires_at,
        Some(now + EXPIRY_GRACE_MS),
        "expiresAt of a child sent long ago"
    );
    ensure_children_inserted(&*s, &[behind, ahead], now).await
}
