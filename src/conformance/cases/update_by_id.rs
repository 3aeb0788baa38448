//! `updateManyById`.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory, Window, EXPIRY_GRACE_MS};
use crate::storage::{TaskExecutionStorageUpdate, UpdateByIdRequest};
use crate::task_executions::{
    CloseStatus, TaskExecutionFilters, TaskExecutionStatus, TaskExecutionUnset,
};

use super::case;

pub fn cases() -> Vec<Case> {
    vec![
        case!("updateManyById/patches_the_given_fields_only", patches),
        case!("updateManyById/empty_request", empty),
        case!("updateManyById/not_found_is_skipped", not_found),
        case!(
            "updateManyById/filter_is_sleeping_task",
            filter_is_sleeping_task
        ),
        case!("updateManyById/filter_status", filter_status),
        case!("updateManyById/filter_is_finished", filter_is_finished),
        case!("updateManyById/unset_executor_id", unset_executor_id),
        case!("updateManyById/unset_run_output", unset_run_output),
        case!("updateManyById/unset_error", unset_error),
        case!("updateManyById/unset_started_at", unset_started_at),
        case!("updateManyById/unset_expires_at", unset_expires_at),
        case!(
            "updateManyById/unset_ocfp_expires_at",
            unset_ocfp_expires_at
        ),
        case!(
            "updateManyById/unset_close_expires_at",
            unset_close_expires_at
        ),
        case!(
            "updateManyById/unset_wins_over_a_value_set_alongside",
            unset_wins
        ),
        case!("updateManyById/requests_apply_in_order", in_order),
        case!("updateManyById/ignores_shards", ignores_shards),
        case!(
            "updateManyById/now_fields_are_the_storage_now_whatever_was_sent",
            now_fields
        ),
        case!(
            "updateManyById/start_at_before_now_becomes_now_a_later_one_is_kept",
            start_at
        ),
        case!(
            "updateManyById/expiry_in_the_past_gets_the_grace_a_later_one_is_kept",
            expiry
        ),
    ]
}

pub fn request(
    id: &str,
    filters: Option<TaskExecutionFilters>,
    update: TaskExecutionStorageUpdate,
) -> UpdateByIdRequest {
    UpdateByIdRequest {
        execution_id: id.to_owned(),
        filters,
        update,
    }
}

/// An update of several fields of different kinds.
pub fn running_update(at: u64) -> TaskExecutionStorageUpdate {
    TaskExecutionStorageUpdate {
        executor_id: Some("executor-1".to_owned()),
        status: Some(TaskExecutionStatus::Running),
        started_at: Some(at),
        expires_at: Some(at + 1_000),
        retry_attempts: Some(1),
        children: Some(vec![summary("c")]),
        close_status: Some(CloseStatus::Ready),
        needs_promise_cancellation: Some(true),
        ..touch(at)
    }
}

async fn patches(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert(f, &*s, &[&execution("a", past()), &execution("b", past())]).await?;
    let (a, b) = (&stored[0], &stored[1]);
    let update = running_update(past() + 10);
    let window = Window::open(f, &*s);
    s.update_many_by_id(vec![request("a", None, update.clone())])
        .await?;
    let window = window.close(&*s);
    let stored = ensure_patched(&*s, a, &update, &window).await?;
    ensure_eq!(
        stored.executor_id.as_deref(),
        Some("executor-1"),
        "executor id"
    );
    ensure_eq!(stored.output, None, "output (not in the update)");
    ensure_untouched(&*s, &[b]).await
}

async fn empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&execution("a", past())]).await?;
    s.update_many_by_id(Vec::new()).await?;
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

async fn not_found(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&execution("a", past())]).await?.remove(0);
    let update = running_update(past() + 10);
    let window = Window::open(f, &*s);
    s.update_many_by_id(vec![
        request("missing", None, update.clone()),
        request("a", None, update.clone()),
    ])
    .await?;
    let window = window.close(&*s);
    ensure!(
        get(&*s, "missing").await?.is_none(),
        "an update inserted a missing execution"
    );
    ensure_patched(&*s, &a, &update, &window).await?;
    Ok(())
}

/// Updates `id` with each of `cases`' filters; `matching` says whether it must be patched.
async fn check_filters(
    f: &dyn StorageFactory,
    s: &dyn crate::storage::TaskExecutionsStorage,
    id: &str,
    cases: Vec<(TaskExecutionFilters, bool)>,
) -> CaseResult {
    for (n, (filters, matching)) in cases.into_iter().enumerate() {
        let before = must_get(s, id).await?;
        let update = TaskExecutionStorageUpdate {
            retry_attempts: Some(before.retry_attempts + 1),
            ..touch(before.updated_at + 1)
        };
        let window = Window::open(f, s);
        s.update_many_by_id(vec![request(id, Some(filters.clone()), update.clone())])
            .await?;
        let window = window.close(s);
        if matching {
            ensure_patched(s, &before, &update, &window).await?;
        } else {
            ensure_eq!(
                must_get(s, id).await?,
                before,
                "{id} after update #{n} with filters {filters:?}"
            );
        }
    }
    Ok(())
}

async fn filter_is_sleeping_task(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![sleeping("s", "u", past()), execution("e", past())])
        .await?;
    check_filters(
        f,
        &*s,
        "s",
        vec![
            (filters(Some(false), None, None), false),
            (filters(Some(true), None, None), true),
        ],
    )
    .await?;
    check_filters(
        f,
        &*s,
        "e",
        vec![
            (filters(Some(true), None, None), false),
            (filters(Some(false), None, None), true),
        ],
    )
    .await
}

async fn filter_status(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![execution("e", past())]).await?;
    let cases = vec![
        (
            filters(None, Some(TaskExecutionStatus::Running), None),
            false,
        ),
        (
            filters(None, Some(TaskExecutionStatus::Completed), None),
            false,
        ),
        (filters(None, Some(TaskExecutionStatus::Ready), None), true),
        (filters(None, None, None), true),
    ];
    check_filters(f, &*s, "e", cases).await
}

async fn filter_is_finished(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut done = execution("done", past());
    done.is_finished = true;
    s.insert_many(vec![done, execution("e", past())]).await?;
    check_filters(
        f,
        &*s,
        "done",
        vec![
            (filters(None, None, Some(false)), false),
            (filters(None, None, Some(true)), true),
        ],
    )
    .await?;
    check_filters(
        f,
        &*s,
        "e",
        vec![
            (filters(None, None, Some(true)), false),
            (filters(None, None, Some(false)), true),
        ],
    )
    .await
}

/// Unsets one field of an execution that has all of them and checks only it went.
async fn unset_one(f: &dyn StorageFactory, field: UnsetField) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert(
        f,
        &*s,
        &[
            &with_unsettable(execution("a", past())),
            &with_unsettable(execution("b", past())),
        ],
    )
    .await?;
    let (a, b) = (&stored[0], &stored[1]);
    let update = TaskExecutionStorageUpdate {
        unset: Some(field.only()),
        ..touch(past() + 10)
    };
    let window = Window::open(f, &*s);
    s.update_many_by_id(vec![request("a", None, update.clone())])
        .await?;
    let window = window.close(&*s);
    let stored = ensure_patched(&*s, a, &update, &window).await?;
    ensure_unset(&stored, &[field])?;
    ensure_untouched(&*s, &[b]).await
}

async fn unset_executor_id(f: &dyn StorageFactory) -> CaseResult {
    unset_one(f, UnsetField::ExecutorId).await
}

async fn unset_run_output(f: &dyn StorageFactory) -> CaseResult {
    unset_one(f, UnsetField::RunOutput).await
}

async fn unset_error(f: &dyn StorageFactory) -> CaseResult {
    unset_one(f, UnsetField::Error).await
}

async fn unset_started_at(f: &dyn StorageFactory) -> CaseResult {
    unset_one(f, UnsetField::StartedAt).await
}

async fn unset_expires_at(f: &dyn StorageFactory) -> CaseResult {
    unset_one(f, UnsetField::ExpiresAt).await
}

async fn unset_ocfp_expires_at(f: &dyn StorageFactory) -> CaseResult {
    unset_one(f, UnsetField::OnChildrenFinishedProcessingExpiresAt).await
}

async fn unset_close_expires_at(f: &dyn StorageFactory) -> CaseResult {
    unset_one(f, UnsetField::CloseExpiresAt).await
}

async fn unset_wins(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    insert(f, &*s, &[&with_unsettable(execution("a", past()))]).await?;
    let update = TaskExecutionStorageUpdate {
        executor_id: Some("new".to_owned()),
        expires_at: Some(future()),
        unset: Some(TaskExecutionUnset {
            executor_id: true,
            expires_at: true,
            ..TaskExecutionUnset::default()
        }),
        ..touch(past() + 10)
    };
    s.update_many_by_id(vec![request("a", None, update)])
        .await?;
    ensure_unset(
        &must_get(&*s, "a").await?,
        &[UnsetField::ExecutorId, UnsetField::ExpiresAt],
    )
}

/// Two requests for one execution: the second's filter sees the first's patch.
async fn in_order(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&execution("a", past())]).await?.remove(0);
    let first = TaskExecutionStorageUpdate {
        status: Some(TaskExecutionStatus::Running),
        ..touch(past() + 1)
    };
    let second = TaskExecutionStorageUpdate {
        status: Some(TaskExecutionStatus::Completed),
        is_finished: Some(true),
        ..touch(past() + 2)
    };
    let running = Some(filters(None, Some(TaskExecutionStatus::Running), None));
    let window = Window::open(f, &*s);
    s.update_many_by_id(vec![
        request("a", None, first.clone()),
        request("a", running, second.clone()),
    ])
    .await?;
    let window = window.close(&*s);
    let stored = must_get(&*s, "a").await?;
    let now = stored.updated_at;
    window.ensure_contains(now, "updatedAt of a")?;
    // One now for the call: both patches stamp the same times.
    ensure_eq!(
        stored,
        patched_at(&patched_at(&a, &first, now), &second, now),
        "a after both requests"
    );
    Ok(())
}

async fn ignores_shards(f: &dyn StorageFactory) -> CaseResult {
    let backend = f.create().await?;
    let writer = backend.client(options(2, &[], false)).await?;
    let updater = backend.client(options(2, &[0], false)).await?;
    let id = id_in_shard("e", 1, 2);
    let value = insert(f, &*writer, &[&execution(&id, past())])
        .await?
        .remove(0);
    let update = running_update(past() + 10);
    let window = Window::open(f, &*updater);
    updater
        .update_many_by_id(vec![request(&id, None, update.clone())])
        .await?;
    let window = window.close(&*updater);
    ensure_patched(&*writer, &value, &update, &window).await?;
    Ok(())
}

/// An update setting every `now` field (and `updatedAt`) to `at`.
fn every_stamp(at: u64) -> TaskExecutionStorageUpdate {
    TaskExecutionStorageUpdate {
        started_at: Some(at),
        finished_at: Some(at),
        waiting_for_children_started_at: Some(at),
        waiting_for_finalize_started_at: Some(at),
        on_children_finished_processing_finished_at: Some(at),
        closed_at: Some(at),
        ..touch(at)
    }
}

/// A client far behind and one far ahead patch in one call: every `now` field they set is
/// the storage's `now` of that call.
async fn now_fields(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    insert(
        f,
        &*s,
        &[&execution("behind", past()), &execution("ahead", past())],
    )
    .await?;
    settle().await;
    let window = Window::open(f, &*s);
    s.update_many_by_id(vec![
        request("behind", None, every_stamp(past())),
        request("ahead", None, every_stamp(future())),
    ])
    .await?;
    let window = window.close(&*s);
    let (behind, ahead) = (
        must_get(&*s, "behind").await?,
        must_get(&*s, "ahead").await?,
    );
    let now = behind.updated_at;
    window.ensure_contains(now, "the now of the update")?;
    ensure_eq!(ahead.updated_at, now, "one now for the call");
    for value in [&behind, &ahead] {
        for (field, at) in super::insert::now_fields(value) {
            // createdAt is not part of an update: it stays the insert's.
            if field != "createdAt" {
                ensure_eq!(at, Some(now), "{field} of {}", value.execution_id);
            }
        }
    }
    Ok(())
}

/// A `startAt` set before the storage's clock becomes its `now`; later, it is kept.
async fn start_at(f: &dyn StorageFactory) -> CaseResult {
    let (later, _) = soon(f).await?;
    let s = storage(f, single()).await?;
    let stored = insert(
        f,
        &*s,
        &[
            &execution("overdue", future()),
            &execution("scheduled", past()),
        ],
    )
    .await?;
    ensure_eq!(stored[0].start_at, future(), "startAt sent far ahead, kept");
    let set = |start_at| TaskExecutionStorageUpdate {
        start_at: Some(start_at),
        ..touch(past())
    };
    let window = Window::open(f, &*s);
    s.update_many_by_id(vec![
        request("overdue", None, set(past())),
        request("scheduled", None, set(later)),
    ])
    .await?;
    let window = window.close(&*s);
    let overdue = ensure_patched(&*s, &stored[0], &set(past()), &window).await?;
    ensure_eq!(
        overdue.start_at,
        overdue.updated_at,
        "startAt set long ago: now"
    );
    let scheduled = ensure_patched(&*s, &stored[1], &set(later), &window).await?;
    ensure_kept("startAt", scheduled.start_at, later)
}

/// An expiry time set before the storage's clock becomes `now + 1 s`; later, it is kept.
async fn expiry(f: &dyn StorageFactory) -> CaseResult {
    let (later, _) = soon(f).await?;
    let s = storage(f, single()).await?;
    let stored = insert(
        f,
        &*s,
        &[&execution("overdue", past()), &execution("kept", past())],
    )
    .await?;
    let set = |at: u64| TaskExecutionStorageUpdate {
        expires_at: Some(at),
        on_children_finished_processing_expires_at: Some(at.saturating_add(1)),
        close_expires_at: Some(at.saturating_add(2)),
        ..touch(past())
    };
    let window = Window::open(f, &*s);
    s.update_many_by_id(vec![
        request("overdue", None, set(past())),
        request("kept", None, set(later)),
    ])
    .await?;
    let window = window.close(&*s);
    let overdue = ensure_patched(&*s, &stored[0], &set(past()), &window).await?;
    let graced = Some(overdue.updated_at + EXPIRY_GRACE_MS);
    ensure_eq!(overdue.expires_at, graced, "expiresAt set long ago");
    ensure_eq!(
        overdue.on_children_finished_processing_expires_at,
        graced,
        "ocfpExpiresAt set long ago"
    );
    ensure_eq!(
        overdue.close_expires_at,
        graced,
        "closeExpiresAt set long ago"
    );
    let kept = ensure_patched(&*s, &stored[1], &set(later), &window).await?;
    ensure_kept("expiresAt", kept.expires_at.unwrap_or(0), later)?;
    ensure_kept(
        "ocfpExpiresAt",
        kept.on_children_finished_processing_expires_at.unwrap_or(0),
        later + 1,
    )?;
    ensure_kept(
        "closeExpiresAt",
        kept.close_expires_at.unwrap_or(0),
        later + 2,
    )
}
