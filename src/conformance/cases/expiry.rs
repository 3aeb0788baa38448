//! The expiry operations, across every shard on `[0, bound)`:
//! `updateByStatusAndIsSleepingTaskAndExpiresAtLessThan`, `updateByOCFPExpiresAt`,
//! `updateByCloseExpiresAt`.

use futures::future::BoxFuture;

use crate::conformance::support::*;
use crate::conformance::{Case, Reached, StorageFactory, Window, EXPIRY_GRACE_MS};
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
        unset,
        bound_after_now_is_lowered_to_now,
        expiry_written_in_the_past_expires_after_the_grace
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
        unset,
        bound_after_now_is_lowered_to_now,
        expiry_written_in_the_past_expires_after_the_grace
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
        unset,
        bound_after_now_is_lowered_to_now,
        expiry_written_in_the_past_expires_after_the_grace
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
    /// The expiry field, by its document name.
    field: &'static str,
    /// Its value in an execution.
    expiry: fn(&TaskExecutionStorageValue) -> Option<u64>,
    /// Sets it.
    set_expiry: fn(&mut TaskExecutionStorageValue, u64),
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
    field: "expiresAt",
    expiry: |value| value.expires_at,
    set_expiry: |value, at| value.expires_at = Some(at),
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
    field: "ocfpExpiresAt",
    expiry: |value| value.on_children_finished_processing_expires_at,
    set_expiry: |value, at| value.on_children_finished_processing_expires_at = Some(at),
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
    field: "closeExpiresAt",
    expiry: |value| value.close_expires_at,
    set_expiry: |value, at| value.close_expires_at = Some(at),
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

/// Inserts `values`, whose expiry times the case placed from `t` (see [`soon`]), and checks
/// they were kept as sent. Returns them as stored.
async fn insert_expiring(
    f: &dyn StorageFactory,
    s: &dyn TaskExecutionsStorage,
    e: &Expiry,
    values: &[&TaskExecutionStorageValue],
) -> Result<Vec<TaskExecutionStorageValue>, Failure> {
    let stored = insert(f, s, values).await?;
    for (value, sent) in stored.iter().zip(values) {
        ensure_kept(
            e.field,
            (e.expiry)(value).unwrap_or(0),
            (e.expiry)(sent).unwrap_or(0),
        )?;
    }
    Ok(stored)
}

/// Runs the operation with `bound`, `limit` and `update`; checks the count and that exactly
/// `expired` were patched (at the call's `now`), the `untouched` not.
async fn ensure_expires(
    f: &dyn StorageFactory,
    s: &dyn TaskExecutionsStorage,
    e: &Expiry,
    (bound, limit, update): (u64, u32, &TaskExecutionStorageUpdate),
    expired: &[&TaskExecutionStorageValue],
    untouched: &[&TaskExecutionStorageValue],
) -> CaseResult {
    let window = Window::open(f, s);
    let count = (e.run)(s, bound, limit, update.clone()).await?;
    let window = window.close(s);
    ensure_eq!(
        usize::try_from(count).unwrap_or(usize::MAX),
        expired.len(),
        "{} count (bound {bound}, limit {limit})",
        e.op
    );
    for value in expired {
        ensure_patched(s, value, update, &window).await?;
    }
    ensure_untouched(s, untouched).await
}

async fn patches_and_counts(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    let stored = insert_expiring(f, &*s, e, &[&(e.make)("a", t), &(e.make)("b", t + 1)]).await?;
    reached.wait_past(t + 1).await;
    let update = (e.leave)(t + 50);
    ensure_expires(
        f,
        &*s,
        e,
        (future(), 10, &update),
        &[&stored[0], &stored[1]],
        &[],
    )
    .await
}

async fn nothing_to_update(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    ensure_eq!(
        (e.run)(&*s, future(), 10, (e.leave)(past())).await?,
        0,
        "{} count on an empty storage",
        e.op
    );
    let a = insert_expiring(f, &*s, e, &[&(e.make)("a", t)]).await?;
    reached.wait_past(t).await;
    ensure_eq!(
        (e.run)(&*s, future(), 0, (e.leave)(past())).await?,
        0,
        "{} count with limit 0",
        e.op
    );
    ensure_eq!(
        (e.run)(&*s, t, 10, (e.leave)(past())).await?,
        0,
        "{} count with a bound at the earliest expiry",
        e.op
    );
    ensure_untouched(&*s, &[&a[0]]).await
}

async fn bound_is_strict(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    let stored = insert_expiring(
        f,
        &*s,
        e,
        &[
            &(e.make)("before", t - 1),
            &(e.make)("at", t),
            &(e.make)("after", t + 1),
        ],
    )
    .await?;
    reached.wait_past(t + 1).await;
    let update = (e.leave)(t + 50);
    ensure_expires(
        f,
        &*s,
        e,
        (t, 10, &update),
        &[&stored[0]],
        &[&stored[1], &stored[2]],
    )
    .await
}

async fn absent_expiry_excluded(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    let none = insert(f, &*s, &[&(e.without)("none")]).await?;
    let expiring = insert_expiring(f, &*s, e, &[&(e.make)("expiring", t)]).await?;
    reached.wait_past(t).await;
    let update = (e.leave)(past());
    ensure_expires(
        f,
        &*s,
        e,
        (future(), 10, &update),
        &[&expiring[0]],
        &[&none[0]],
    )
    .await
}

async fn ascending_expiry_then_insertion_with_limit(
    f: &dyn StorageFactory,
    e: &Expiry,
) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    let sent = [
        (e.make)("c", t + 2),
        (e.make)("a", t),
        (e.make)("b", t),
        (e.make)("d", t + 3),
    ];
    let mut stored = Vec::new();
    for value in &sent {
        stored.extend(insert_expiring(f, &*s, e, &[value]).await?);
    }
    let (c, a, b, d) = (&stored[0], &stored[1], &stored[2], &stored[3]);
    reached.wait_past(t + 3).await;
    let update = (e.leave)(t + 50);
    ensure_expires(f, &*s, e, (future(), 1, &update), &[a], &[b, c, d]).await?;
    ensure_expires(f, &*s, e, (future(), 2, &update), &[b, c], &[d]).await?;
    ensure_expires(f, &*s, e, (future(), 10, &update), &[d], &[]).await
}

/// Owning shard 1 of 3 changes nothing: the operation spans every shard, with one limit.
async fn every_shard_whatever_the_owned_ones_with_one_limit(
    f: &dyn StorageFactory,
    e: &Expiry,
) -> CaseResult {
    const TOTAL: u32 = 3;
    let (t, reached) = soon(f).await?;
    let backend = f.create().await?;
    let s = backend.client(options(TOTAL, &[1], false)).await?;
    // Two per shard; expiries interleaved across shards: shard k holds t+k and t+3+k.
    let values: Vec<_> = (0..6_u32)
        .map(|i| {
            (e.make)(
                &id_in_shard(&format!("e{i}"), i % TOTAL, TOTAL),
                t + u64::from(i),
            )
        })
        .collect();
    let stored = insert_expiring(f, &*s, e, &values.iter().collect::<Vec<_>>()).await?;
    reached.wait_past(t + 5).await;
    let update = (e.leave)(t + 50);
    ensure_expires(
        f,
        &*s,
        e,
        (future(), 4, &update),
        &stored[..4].iter().collect::<Vec<_>>(),
        &stored[4..].iter().collect::<Vec<_>>(),
    )
    .await
}

async fn unset(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    // `with_unsettable` sets every expiry field: the other operations' far ahead, this one's
    // at `t`.
    let mut value = with_unsettable((e.make)("a", t));
    value.expires_at = Some(future());
    value.on_children_finished_processing_expires_at = Some(future());
    value.close_expires_at = Some(future());
    (e.set_expiry)(&mut value, t);
    let stored = insert_expiring(f, &*s, e, &[&value]).await?;
    reached.wait_past(t).await;
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
    ensure_expires(f, &*s, e, (future(), 10, &update), &[&stored[0]], &[]).await?;
    ensure_unset(&must_get(&*s, "a").await?, &removed)
}

/// A client far ahead passes a bound far ahead: the storage's `now` bounds, so an expiry
/// time still ahead of its clock is not expired early.
async fn bound_after_now_is_lowered_to_now(f: &dyn StorageFactory, e: &Expiry) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    let stored = insert_expiring(
        f,
        &*s,
        e,
        &[&(e.make)("due", t), &(e.make)("not-due", t + 3_600_000)],
    )
    .await?;
    reached.wait_past(t).await;
    let update = (e.leave)(future());
    ensure_expires(
        f,
        &*s,
        e,
        (future(), 10, &update),
        &[&stored[0]],
        &[&stored[1]],
    )
    .await
}

/// An expiry time written in the past (by a client far behind) becomes `now + 1 s`: not
/// expired at once, expired once that has passed.
async fn expiry_written_in_the_past_expires_after_the_grace(
    f: &dyn StorageFactory,
    e: &Expiry,
) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert(f, &*s, &[&(e.make)("late", past())])
        .await?
        .remove(0);
    let reached = Reached::new(stored.updated_at);
    let expiry = (e.expiry)(&stored).unwrap_or(0);
    ensure_eq!(
        expiry,
        stored.updated_at + EXPIRY_GRACE_MS,
        "{} written long ago",
        e.field
    );
    let update = (e.leave)(past());
    // Unless this took the whole grace, the execution has not expired yet.
    if reached.lower_bound() < expiry {
        ensure_expires(f, &*s, e, (future(), 10, &update), &[], &[&stored]).await?;
    }
    reached.wait_past(expiry).await;
    ensure_expires(f, &*s, e, (future(), 10, &update), &[&stored], &[]).await
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
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    let e = &EXPIRES_AT;
    let make = EXPIRES_AT.make;
    let mut asleep = make("asleep", t);
    asleep.is_sleeping_task = true;
    asleep.sleeping_task_unique_id = Some("asleep-unique".to_owned());
    let mut waiting = make("waiting", t);
    waiting.status = TaskExecutionStatus::WaitingForChildren;
    let stored = insert_expiring(f, &*s, e, &[&asleep, &waiting, &make("running", t + 1)]).await?;
    let (asleep, waiting, running) = (&stored[0], &stored[1], &stored[2]);
    reached.wait_past(t + 1).await;
    let update = (EXPIRES_AT.leave)(t + 50);
    ensure_expires(
        f,
        &*s,
        e,
        (future(), 10, &update),
        &[running],
        &[asleep, waiting],
    )
    .await?;
    let window = Window::open(f, &*s);
    let count = s
        .update_by_status_and_is_sleeping_task_and_expires_at_less_than(
            UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                status: TaskExecutionStatus::Running,
                is_sleeping_task: true,
                expires_at_less_than: future(),
                update: update.clone(),
                limit: 10,
            },
        )
        .await?;
    let window = window.close(&*s);
    ensure_eq!(count, 1, "{EXPIRES} count for running sleeping tasks");
    ensure_patched(&*s, asleep, &update, &window).await?;
    ensure_untouched(&*s, &[waiting]).await
}
