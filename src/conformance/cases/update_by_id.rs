//! `updateManyById`.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory};
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
    let (a, b) = (execution("a", past()), execution("b", past()));
    s.insert_many(vec![a.clone(), b.clone()]).await?;
    let update = running_update(past() + 10);
    s.update_many_by_id(vec![request("a", None, update.clone())])
        .await?;
    let stored = must_get(&*s, "a").await?;
    ensure_eq!(stored, patched(&a, &update), "patched execution");
    ensure_eq!(
        stored.executor_id.as_deref(),
        Some("executor-1"),
        "executor id"
    );
    ensure_eq!(stored.output, None, "output (not in the update)");
    ensure_untouched(&*s, &[&b]).await
}

async fn empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = execution("a", past());
    s.insert_many(vec![a.clone()]).await?;
    s.update_many_by_id(Vec::new()).await?;
    ensure_untouched(&*s, &[&a]).await
}

async fn not_found(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = execution("a", past());
    s.insert_many(vec![a.clone()]).await?;
    let update = running_update(past() + 10);
    s.update_many_by_id(vec![
        request("missing", None, update.clone()),
        request("a", None, update.clone()),
    ])
    .await?;
    ensure!(
        get(&*s, "missing").await?.is_none(),
        "an update inserted a missing execution"
    );
    ensure_stored(&*s, &patched(&a, &update)).await
}

/// Updates `id` with each of `cases`' filters; `matching` says whether it must be patched.
async fn check_filters(
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
        s.update_many_by_id(vec![request(id, Some(filters.clone()), update.clone())])
            .await?;
        let expected = if matching {
            patched(&before, &update)
        } else {
            before
        };
        ensure_eq!(
            must_get(s, id).await?,
            expected,
            "{id} after update #{n} with filters {filters:?}"
        );
    }
    Ok(())
}

async fn filter_is_sleeping_task(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![sleeping("s", "u", past()), execution("e", past())])
        .await?;
    check_filters(
        &*s,
        "s",
        vec![
            (filters(Some(false), None, None), false),
            (filters(Some(true), None, None), true),
        ],
    )
    .await?;
    check_filters(
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
    check_filters(&*s, "e", cases).await
}

async fn filter_is_finished(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut done = execution("done", past());
    done.is_finished = true;
    s.insert_many(vec![done, execution("e", past())]).await?;
    check_filters(
        &*s,
        "done",
        vec![
            (filters(None, None, Some(false)), false),
            (filters(None, None, Some(true)), true),
        ],
    )
    .await?;
    check_filters(
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
    let (a, b) = (
        with_unsettable(execution("a", past())),
        with_unsettable(execution("b", past())),
    );
    s.insert_many(vec![a.clone(), b.clone()]).await?;
    let update = TaskExecutionStorageUpdate {
        unset: Some(field.only()),
        ..touch(past() + 10)
    };
    s.update_many_by_id(vec![request("a", None, update.clone())])
        .await?;
    let stored = must_get(&*s, "a").await?;
    ensure_unset(&stored, &[field])?;
    ensure_eq!(stored, patched(&a, &update), "a after unsetting {field:?}");
    ensure_untouched(&*s, &[&b]).await
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
    let a = with_unsettable(execution("a", past()));
    s.insert_many(vec![a.clone()]).await?;
    let update = TaskExecutionStorageUpdate {
        executor_id: Some("new".to_owned()),
        expires_at: Some(past() + 99),
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
    let a = execution("a", past());
    s.insert_many(vec![a.clone()]).await?;
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
    s.update_many_by_id(vec![
        request("a", None, first.clone()),
        request("a", running, second.clone()),
    ])
    .await?;
    ensure_stored(&*s, &patched(&patched(&a, &first), &second)).await
}

async fn ignores_shards(f: &dyn StorageFactory) -> CaseResult {
    let backend = f.create().await?;
    let writer = backend.client(options(2, &[], false)).await?;
    let updater = backend.client(options(2, &[0], false)).await?;
    let id = id_in_shard("e", 1, 2);
    let value = execution(&id, past());
    writer.insert_many(vec![value.clone()]).await?;
    let update = running_update(past() + 10);
    updater
        .update_many_by_id(vec![request(&id, None, update.clone())])
        .await?;
    ensure_stored(&*writer, &patched(&value, &update)).await
}
