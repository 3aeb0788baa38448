//! The expiry operations, across every shard on `[0, bound)`:
//! `updateByStatusAndIsSleepingTaskAndExpiresAtLessThan`, `updateByOCFPExpiresAt`,
//! `updateByCloseExpiresAt`.

use futures::future::BoxFuture;

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory};
use crate::storage::{
    TaskExecutionStorageUpdate, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateByCloseExpiresAtLessThanRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
};
use crate::task_executions::{
    CloseStatus, ErrorType, ExecutionError, OnChildrenFinishedProcessingStatus, TaskExecutionStatus,
};

use super::case;

const EXPIRES: &str = "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan";
const OCFP: &str = "updateByOCFPExpiresAt";
const CLOSE: &str = "updateByCloseExpiresAt";

macro_rules! expiry_cases {
    ($op:literal, $expiry:expr, $($case:ident),*) => {
        vec![$(
            $crate::conformance::Case {
                name: concat!($op, "/", stringify!($case)),
                run: |factory| Box::pin($case(factory, $expiry)),
            },
        )*]
    };
}

pub fn cases() -> Vec<Case> {
    let mut cases = expiry_cases!(
        "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
        &EXPIRES_AT,
        patches_and_counts,
        nothing_to_update,
        bound_is_strict,
        absent_expiry_excluded,
        ascending_expiry_then_insertion_with_limit,
        every_shard_whatever_the_owned_ones_with_one_limit,
        unset
    );
    cases.push(case!(
        "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan/status_and_is_sleeping_task_must_match",
        status_and_is_sleeping_task
    ));
    cases.extend(expiry_cases!(
        "updateByOCFPExpiresAt",
        &OCFP_EXPIRES_AT,
        patches_and_counts,
        nothing_to_update,
        bound_is_strict,
        absent_expiry_excluded,
        ascending_expiry_then_insertion_with_limit,
        every_shard_whatever_the_owned_ones_with_one_limit,
        unset
    ));
    cases.extend(expiry_cases!(
        "updateByCloseExpiresAt",
        &CLOSE_EXPIRES_AT,
        patches_and_counts,
        nothing_to_update,
        bound_is_strict,
        absent_expiry_excluded,
        ascending_expiry_then_insertion_with_limit,
        every_shard_whatever_the_owned_ones_with_one_limit,
        unset
    ));
    cases
}

type Run = for<'a> fn(
    &'a dyn TaskExecutionsStorage,
    u64,
    u32,
    TaskExecutionStorageUpdate,
) -> BoxFuture<'a, Result<u32, Failure>>;

/// One expiry operation as the generic cases see it.
pub struct Expiry {
    op: &'static str,
    /// An execution that expires at `expiry`.
    make: fn(&str, u64) -> TaskExecutionStorageValue,
    /// An execution like `make`'s without the expiry field.
    without: fn(&str) -> TaskExecutionStorageValue,
    /// An update that takes what it patches out of the operation's range.
    leave: fn(u64) -> TaskExecutionStorageUpdate,
    /// Unsetting these keeps the execution selectable: what the `unset` case removes.
    unsettable: &'static [UnsetField],
    run: Run,
}

fn timed_out_error() -> ExecutionError {
    ExecutionError {
        error_type: ErrorType::TimedOut,
        message: "timed out".to_owned(),
        is_retryable: true,
        is_internal: false,
    }
}

const EXPIRES_AT: Expiry = Expiry {
    op: EXPIRES,
    make: |id, expiry| {
        let mut value = execution(id, expiry.saturating_sub(1_000));
        value.status = TaskExecutionStatus::Running;
        value.executor_id = Some("executor".to_owned());
        value.started_at = Some(value.start_at);
        value.expires_at = Some(expiry);
        value
    },
    without: |id| {
        let mut value = execution(id, past());
        value.status = TaskExecutionStatus::Running;
        value
    },
    leave: |at| TaskExecutionStorageUpdate {
        status: Some(TaskExecutionStatus::TimedOut),
        error: Some(timed_out_error()),
        ..touch(at)
    },
    unsettable: &[
        UnsetField::ExecutorId,
        UnsetField::StartedAt,
        UnsetField::CloseExpiresAt,
    ],
    run: |s, bound, limit, update| {
        Box::pin(async move {
            Ok(
                s.update_by_status_and_is_sleeping_task_and_expires_at_less_than(
                    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                        status: TaskExecutionStatus::Running,
                        is_sleeping_task: false,
                        expires_at_less_than: bound,
                        update,
                        limit,
                    },
                )
                .await?,
            )
        })
    },
};

const OCFP_EXPIRES_AT: Expiry = Expiry {
    op: OCFP,
    make: |id, expiry| {
        let mut value = execution(id, expiry.saturating_sub(1_000));
        value.status = TaskExecutionStatus::WaitingForChildren;
        value.on_children_finished_processing_status =
            OnChildrenFinishedProcessingStatus::Processing;
        value.on_children_finished_processing_expires_at = Some(expiry);
        value
    },
    without: |id| {
        let mut value = execution(id, past());
        value.status = TaskExecutionStatus::WaitingForChildren;
        value.on_children_finished_processing_status =
            OnChildrenFinishedProcessingStatus::Processing;
        value
    },
    leave: |at| TaskExecutionStorageUpdate {
        on_children_finished_processing_status: Some(OnChildrenFinishedProcessingStatus::Idle),
        unset: Some(UnsetField::OnChildrenFinishedProcessingExpiresAt.only()),
        ..touch(at)
    },
    unsettable: &[UnsetField::ExecutorId, UnsetField::ExpiresAt],
    run: |s, bound, limit, update| {
        Box::pin(async move {
            Ok(
                s.update_by_on_children_finished_processing_expires_at_less_than(
                    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest {
                        on_children_finished_processing_expires_at_less_than: bound,
                        update,
                        limit,
                    },
                )
                .await?,
            )
        })
    },
};

const CLOSE_EXPIRES_AT: Expiry = Expiry {
    op: CLOSE,
    make: |id, expiry| {
        let mut value = execution(id, expiry.saturating_sub(1_000));
        value.status = TaskExecutionStatus::Completed;
        value.is_finished = true;
        value.close_status = CloseStatus::Closing;
        value.close_expires_at = Some(expiry);
        value
    },
    without: |id| {
        let mut value = execution(id, past());
        value.status = TaskExecutionStatus::Completed;
        value.is_finished = true;
        value.close_status = CloseStatus::Closing;
        value
    },
    leave: |at| TaskExecutionStorageUpdate {
        close_status: Some(CloseStatus::Ready),
        unset: Some(UnsetField::CloseExpiresAt.only()),
        ..touch(at)
    },
    unsettable: &[UnsetField::RunOutput, UnsetField::Error],
    run: |s, bound, limit, update| {
        Box::pin(async move {
            Ok(
                s.update_by_close_expires_at_less_than(UpdateByCloseExpiresAtLessThanRequest {
                    close_expires_at_less_than: bound,
                    update,
                    limit,
                })
                .await?,
            )
        })
    },
};

async fn patches_and_counts(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (a, b) = ((e.make)("a", t), (e.make)("b", t + 1));
    s.insert_many(vec![a.clone(), b.clone()]).await?;
    let update = (e.leave)(t + 50);
    ensure_eq!(
        (e.run)(&*s, t + 100, 10, update.clone()).await?,
        2,
        "{} count",
        e.op
    );
    ensure_stored(&*s, &patched(&a, &update)).await?;
    ensure_stored(&*s, &patched(&b, &update)).await
}

async fn nothing_to_update(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    ensure_eq!(
        (e.run)(&*s, future(), 10, (e.leave)(t)).await?,
        0,
        "{} count on an empty storage",
        e.op
    );
    let a = (e.make)("a", t);
    s.insert_many(vec![a.clone()]).await?;
    ensure_eq!(
        (e.run)(&*s, future(), 0, (e.leave)(t)).await?,
        0,
        "{} count with limit 0",
        e.op
    );
    ensure_eq!(
        (e.run)(&*s, t, 10, (e.leave)(t)).await?,
        0,
        "{} count with a bound before every expiry",
        e.op
    );
    ensure_untouched(&*s, &[&a]).await
}

async fn bound_is_strict(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (before, at, after) = (
        (e.make)("before", t - 1),
        (e.make)("at", t),
        (e.make)("after", t + 1),
    );
    s.insert_many(vec![before.clone(), at.clone(), after.clone()])
        .await?;
    let update = (e.leave)(t + 50);
    ensure_eq!(
        (e.run)(&*s, t, 10, update.clone()).await?,
        1,
        "{} count with the bound at \"at\"'s expiry",
        e.op
    );
    ensure_stored(&*s, &patched(&before, &update)).await?;
    ensure_untouched(&*s, &[&at, &after]).await
}

async fn absent_expiry_excluded(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let s = storage(f, single()).await?;
    let none = (e.without)("none");
    let zero = (e.make)("zero", 0);
    s.insert_many(vec![none.clone(), zero.clone()]).await?;
    let update = (e.leave)(past());
    ensure_eq!(
        (e.run)(&*s, future(), 10, update.clone()).await?,
        1,
        "{} count (one without expiry, one expiring at 0)",
        e.op
    );
    ensure_untouched(&*s, &[&none]).await?;
    ensure_stored(&*s, &patched(&zero, &update)).await
}

async fn ascending_expiry_then_insertion_with_limit(
    f: &dyn StorageFactory,
    e: &Expiry,
) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (c, a, b, d) = (
        (e.make)("c", t + 2),
        (e.make)("a", t),
        (e.make)("b", t),
        (e.make)("d", t + 3),
    );
    insert_in_order(&*s, &[&c, &a, &b, &d]).await?;
    let update = (e.leave)(t + 50);
    let bound = t + 100;
    ensure_eq!(
        (e.run)(&*s, bound, 1, update.clone()).await?,
        1,
        "{} count with limit 1",
        e.op
    );
    ensure_stored(&*s, &patched(&a, &update)).await?;
    ensure_untouched(&*s, &[&b, &c, &d]).await?;
    ensure_eq!(
        (e.run)(&*s, bound, 2, update.clone()).await?,
        2,
        "{} count with limit 2",
        e.op
    );
    ensure_stored(&*s, &patched(&b, &update)).await?;
    ensure_stored(&*s, &patched(&c, &update)).await?;
    ensure_untouched(&*s, &[&d]).await?;
    ensure_eq!(
        (e.run)(&*s, bound, 10, update.clone()).await?,
        1,
        "{} count for the rest",
        e.op
    );
    ensure_stored(&*s, &patched(&d, &update)).await
}

/// Owning shard 1 of 3 changes nothing: the operation spans every shard, with one limit.
async fn every_shard_whatever_the_owned_ones_with_one_limit(
    f: &dyn StorageFactory,
    e: &Expiry,
) -> CaseResult {
    const TOTAL: u32 = 3;
    let backend = f.create().await?;
    let s = backend.client(options(TOTAL, &[1], false)).await?;
    let t = past();
    // Two per shard; expiries interleaved across shards: shard k holds t+k and t+3+k.
    let values: Vec<_> = (0..6_u32)
        .map(|i| {
            (e.make)(
                &id_in_shard(&format!("e{i}"), i % TOTAL, TOTAL),
                t + u64::from(i),
            )
        })
        .collect();
    s.insert_many(values.clone()).await?;
    let update = (e.leave)(t + 50);
    ensure_eq!(
        (e.run)(&*s, t + 100, 4, update.clone()).await?,
        4,
        "{} count with limit 4",
        e.op
    );
    for value in &values[..4] {
        ensure_stored(&*s, &patched(value, &update)).await?;
    }
    ensure_untouched(&*s, &values[4..].iter().collect::<Vec<_>>()).await
}

async fn unset(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let a = with_unsettable((e.make)("a", t));
    s.insert_many(vec![a.clone()]).await?;
    let mut update = (e.leave)(t + 50);
    let mut unset = UnsetField::all_of(e.unsettable);
    if let Some(leaving) = update.unset.take() {
        unset = merge(unset, leaving);
    }
    let removed: Vec<UnsetField> = UnsetField::ALL
        .into_iter()
        .filter(|field| field.is_marked(&unset))
        .collect();
    update.unset = Some(unset);
    ensure_eq!(
        (e.run)(&*s, t + 100, 10, update.clone()).await?,
        1,
        "{} count",
        e.op
    );
    let stored = must_get(&*s, "a").await?;
    ensure_unset(&stored, &removed)?;
    ensure_eq!(stored, patched(&a, &update), "{}: a after the update", e.op);
    Ok(())
}

fn merge(
    a: crate::task_executions::TaskExecutionUnset,
    b: crate::task_executions::TaskExecutionUnset,
) -> crate::task_executions::TaskExecutionUnset {
    crate::task_executions::TaskExecutionUnset {
        executor_id: a.executor_id || b.executor_id,
        run_output: a.run_output || b.run_output,
        error: a.error || b.error,
        started_at: a.started_at || b.started_at,
        expires_at: a.expires_at || b.expires_at,
        on_children_finished_processing_expires_at: a.on_children_finished_processing_expires_at
            || b.on_children_finished_processing_expires_at,
        close_expires_at: a.close_expires_at || b.close_expires_at,
    }
}

async fn status_and_is_sleeping_task(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let make = EXPIRES_AT.make;
    let mut asleep = make("asleep", t);
    asleep.is_sleeping_task = true;
    asleep.sleeping_task_unique_id = Some("asleep-unique".to_owned());
    let mut waiting = make("waiting", t);
    waiting.status = TaskExecutionStatus::WaitingForChildren;
    let running = make("running", t + 1);
    s.insert_many(vec![asleep.clone(), waiting.clone(), running.clone()])
        .await?;
    let update = (EXPIRES_AT.leave)(t + 50);
    ensure_eq!(
        (EXPIRES_AT.run)(&*s, t + 100, 10, update.clone()).await?,
        1,
        "{EXPIRES} count for running non-sleeping tasks"
    );
    ensure_stored(&*s, &patched(&running, &update)).await?;
    ensure_untouched(&*s, &[&asleep, &waiting]).await?;
    let count = s
        .update_by_status_and_is_sleeping_task_and_expires_at_less_than(
            UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                status: TaskExecutionStatus::Running,
                is_sleeping_task: true,
                expires_at_less_than: t + 100,
                update: update.clone(),
                limit: 10,
            },
        )
        .await?;
    ensure_eq!(count, 1, "{EXPIRES} count for running sleeping tasks");
    ensure_stored(&*s, &patched(&asleep, &update)).await?;
    ensure_untouched(&*s, &[&waiting]).await
}
