//! `updateByStatusAndStartAtLessThanAndReturn`, and the shapes every sharded range operation
//! is checked against.

use futures::future::BoxFuture;

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory, Window};
use crate::storage::{
    TaskExecutionStorageUpdate, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateByIdRequest, UpdateByStatusAndStartAtLessThanRequest,
};
use crate::task_executions::TaskExecutionStatus;

use super::case;

const OP: &str = "updateByStatusAndStartAtLessThanAndReturn";

pub fn cases() -> Vec<Case> {
    vec![
        case!("updateByStatusAndStartAtLessThanAndReturn/claims_and_sets_expires_at", claims),
        case!("updateByStatusAndStartAtLessThanAndReturn/nothing_to_claim", nothing),
        case!("updateByStatusAndStartAtLessThanAndReturn/limit_zero_claims_nothing", limit_zero),
        case!("updateByStatusAndStartAtLessThanAndReturn/start_at_bound_is_strict", strict_bound),
        case!("updateByStatusAndStartAtLessThanAndReturn/other_statuses_untouched", other_status),
        case!("updateByStatusAndStartAtLessThanAndReturn/ascending_start_at_then_insertion_with_limit", ordered),
        case!("updateByStatusAndStartAtLessThanAndReturn/every_owned_shard_in_order_with_limit_each", every_owned_shard),
        case!("updateByStatusAndStartAtLessThanAndReturn/unowned_shards_untouched", unowned),
        case!("updateByStatusAndStartAtLessThanAndReturn/unset", unset),
        case!("updateByStatusAndStartAtLessThanAndReturn/expires_at_is_the_storage_now_plus_timeout", lease_on_the_storage_clock),
        case!("updateByStatusAndStartAtLessThanAndReturn/bound_after_now_is_lowered_to_now", bound_clamped),
        case!("updateByStatusAndStartAtLessThanAndReturn/scheduled_execution_claimable_once_its_start_at_passed", scheduled),
    ]
}

/// An execution selectable by the operation under test. Its index key (`startAt` or
/// `updatedAt`) is the `now` of the write that last set it (see [`rekey`]).
pub type Make = fn(&str) -> TaskExecutionStorageValue;

/// Runs the operation under test with `limit`, with an update that makes what it selects no
/// longer selectable; gives the returned ids in order.
pub type Run =
    for<'a> fn(&'a dyn TaskExecutionsStorage, u32) -> BoxFuture<'a, Result<Vec<String>, Failure>>;

/// Sets the index key of the sharded range operations to the storage's `now`: `startAt`
/// (raised from long ago) and `updatedAt`, for `ids` in one call. Lets the clock pass first,
/// so that keys set one after the other differ.
pub async fn rekey(
    f: &dyn StorageFactory,
    s: &dyn TaskExecutionsStorage,
    before: &[&TaskExecutionStorageValue],
) -> Result<Vec<TaskExecutionStorageValue>, Failure> {
    let update = TaskExecutionStorageUpdate {
        start_at: Some(past()),
        ..touch(past())
    };
    settle().await;
    let window = Window::open(f, s);
    s.update_many_by_id(
        before
            .iter()
            .map(|value| UpdateByIdRequest {
                execution_id: value.execution_id.clone(),
                filters: None,
                update: update.clone(),
            })
            .collect(),
    )
    .await?;
    let window = window.close(s);
    let mut after = Vec::with_capacity(before.len());
    for value in before {
        after.push(ensure_patched(s, value, &update, &window).await?);
    }
    Ok(after)
}

/// Index order (ascending key, ties by insertion) and `limit`, on one shard: inserted in
/// the order c, a, b, d (a and b in one call: the same key), then c and d rekeyed, so that
/// the key order a = b < c < d is not the insertion order.
pub async fn check_order_and_limit(
    f: &dyn StorageFactory,
    op: &str,
    make: Make,
    run: Run,
) -> CaseResult {
    let s = storage(f, single()).await?;
    let c = insert(f, &*s, &[&make("c")]).await?;
    settle().await;
    insert(f, &*s, &[&make("a"), &make("b")]).await?;
    settle().await;
    let d = insert(f, &*s, &[&make("d")]).await?;
    rekey(f, &*s, &[&c[0]]).await?;
    let d = rekey(f, &*s, &[&d[0]]).await?;
    settle().await;
    ensure_eq!(
        run(&*s, 3).await?,
        strings(&["a", "b", "c"]),
        "{op} with limit 3"
    );
    ensure_untouched(&*s, &[&d[0]]).await?;
    ensure_eq!(run(&*s, 10).await?, strings(&["d"]), "{op} again");
    ensure_eq!(
        run(&*s, 10).await?,
        Vec::<String>::new(),
        "{op} once all are taken"
    );
    Ok(())
}

/// Owned shards 0 and 2 of 3: each gets the full limit, in ascending shard order; shard 1 is
/// not visited.
pub async fn check_every_owned_shard(
    f: &dyn StorageFactory,
    op: &str,
    make: Make,
    run: Run,
) -> CaseResult {
    const TOTAL: u32 = 3;
    let backend = f.create().await?;
    let s = backend.client(options(TOTAL, &[2, 0], false)).await?;
    let mut by_shard = Vec::new();
    for shard in 0..TOTAL {
        let values: Vec<_> = (0..3)
            .map(|i| make(&id_in_shard(&format!("s{shard}-{i}"), shard, TOTAL)))
            .collect();
        by_shard.push(insert_in_order(f, &*s, &values.iter().collect::<Vec<_>>()).await?);
    }
    // Rekeyed in descending order, so that index order is not insertion order: in each
    // shard, the third is first, then the second, then the first.
    let mut stored: Vec<Vec<TaskExecutionStorageValue>> = vec![Vec::new(); 3];
    for i in (0..3).rev() {
        let rekeyed = rekey(
            f,
            &*s,
            &by_shard.iter().map(|values| &values[i]).collect::<Vec<_>>(),
        )
        .await?;
        for (shard, value) in rekeyed.into_iter().enumerate() {
            stored[shard].insert(0, value);
        }
    }
    settle().await;
    let expected: Vec<String> = [&stored[0], &stored[2]]
        .iter()
        .flat_map(|values| {
            [
                values[2].execution_id.clone(),
                values[1].execution_id.clone(),
            ]
        })
        .collect();
    ensure_eq!(
        run(&*s, 2).await?,
        expected,
        "{op} with limit 2 on shards [0, 2] of 3"
    );
    ensure_untouched(
        &*s,
        &stored[1]
            .iter()
            .chain([&stored[0][0], &stored[2][0]])
            .collect::<Vec<_>>(),
    )
    .await
}

/// A client owning shard 1 of 2 does not touch shard 0.
pub async fn check_unowned_untouched(
    f: &dyn StorageFactory,
    op: &str,
    make: Make,
    run: Run,
) -> CaseResult {
    let backend = f.create().await?;
    let s = backend.client(options(2, &[1], false)).await?;
    let values: Vec<_> = (0..3)
        .map(|i| make(&id_in_shard(&format!("e{i}"), 0, 2)))
        .collect();
    let stored = insert(f, &*s, &values.iter().collect::<Vec<_>>()).await?;
    settle().await;
    ensure_eq!(
        run(&*s, 10).await?,
        Vec::<String>::new(),
        "{op} by a client owning shard 1 only"
    );
    ensure_untouched(&*s, &stored.iter().collect::<Vec<_>>()).await
}

/// A ready execution sent with `startAt`.
fn ready_at(id: &str, start_at: u64) -> TaskExecutionStorageValue {
    let mut value = execution(id, past());
    value.start_at = start_at;
    value
}

/// A ready execution sent by a client far behind: due at once.
fn ready(id: &str) -> TaskExecutionStorageValue {
    ready_at(id, past())
}

fn claim(
    status: TaskExecutionStatus,
    start_at_less_than: u64,
    limit: u32,
) -> UpdateByStatusAndStartAtLessThanRequest {
    UpdateByStatusAndStartAtLessThanRequest {
        status,
        start_at_less_than,
        update: TaskExecutionStorageUpdate {
            status: Some(TaskExecutionStatus::Running),
            executor_id: Some("claimer".to_owned()),
            started_at: Some(past() + 50),
            ..touch(past() + 50)
        },
        update_expires_at_with_started_at: past() + 60,
        limit,
    }
}

fn run_claim(
    s: &dyn TaskExecutionsStorage,
    limit: u32,
) -> BoxFuture<'_, Result<Vec<String>, Failure>> {
    Box::pin(async move {
        let claimed = s
            .update_by_status_and_start_at_less_than_and_return(claim(
                TaskExecutionStatus::Ready,
                future(),
                limit,
            ))
            .await?;
        Ok(ids(&claimed))
    })
}

/// `value` as a claim with `request` at `now` leaves it: patched, and leased from `now`.
fn claimed_at(
    value: &TaskExecutionStorageValue,
    request: &UpdateByStatusAndStartAtLessThanRequest,
    now: u64,
) -> TaskExecutionStorageValue {
    let mut value = patched_at(value, &request.update, now);
    // `updateExpiresAtWithStartedAt` is `at_least_now`: the lease starts no earlier than now.
    let started = request.update_expires_at_with_started_at.max(now);
    value.expires_at = Some(started + value.timeout_ms);
    value
}

/// Runs `request` and checks that it claimed exactly `before`, in order: returned and stored
/// as claimed at the `now` of the call (in its window). Returns them as stored.
async fn ensure_claims(
    f: &dyn StorageFactory,
    s: &dyn TaskExecutionsStorage,
    request: &UpdateByStatusAndStartAtLessThanRequest,
    before: &[&TaskExecutionStorageValue],
) -> Result<Vec<TaskExecutionStorageValue>, Failure> {
    let window = Window::open(f, s);
    let returned = s
        .update_by_status_and_start_at_less_than_and_return(request.clone())
        .await?;
    let window = window.close(s);
    ensure_eq!(
        ids(&returned),
        before
            .iter()
            .map(|v| v.execution_id.clone())
            .collect::<Vec<_>>(),
        "{OP}: claimed"
    );
    for (value, got) in before.iter().zip(&returned) {
        let now = got.updated_at;
        window.ensure_contains(now, format_args!("updatedAt of {}", got.execution_id))?;
        ensure_eq!(
            *got,
            claimed_at(value, request, now),
            "{OP}: {} as returned (after the patch)",
            got.execution_id
        );
        ensure_stored(s, got).await?;
    }
    Ok(returned)
}

/// Ready executions due at once (sent long ago): claimed right after the insert, and leased
/// for their own timeout from the storage's `now` (the `updateExpiresAtWithStartedAt` sent, in
/// the past, is raised to it).
async fn claims(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut slow = ready("slow");
    slow.timeout_ms = 60_000;
    let stored = insert_in_order(f, &*s, &[&ready("a"), &ready("b"), &slow]).await?;
    settle().await;
    let request = claim(TaskExecutionStatus::Ready, future(), 10);
    let claimed = ensure_claims(f, &*s, &request, &stored.iter().collect::<Vec<_>>()).await?;
    ensure_eq!(
        claimed[2].expires_at,
        Some(claimed[2].updated_at + 60_000),
        "expiresAt of slow"
    );
    Ok(())
}

async fn nothing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        run_claim(&*s, 10).await?,
        Vec::<String>::new(),
        "{OP} on an empty storage"
    );
    let mut running = ready("running");
    running.status = TaskExecutionStatus::Running;
    let later = ready_at("later", future());
    let stored = insert(f, &*s, &[&running, &later]).await?;
    settle().await;
    ensure_eq!(
        run_claim(&*s, 10).await?,
        Vec::<String>::new(),
        "{OP} with nothing ready and due"
    );
    ensure_untouched(&*s, &stored.iter().collect::<Vec<_>>()).await
}

async fn limit_zero(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&ready("a")]).await?;
    settle().await;
    ensure_eq!(
        run_claim(&*s, 0).await?,
        Vec::<String>::new(),
        "{OP} with limit 0"
    );
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

/// `startAt` placed just ahead of the storage's clock (kept as sent), then passed: a bound
/// equal to a `startAt` excludes it.
async fn strict_bound(f: &dyn StorageFactory) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    let sent = [
        ready_at("before", t - 1),
        ready_at("at", t),
        ready_at("after", t + 1),
    ];
    let stored = insert(f, &*s, &sent.iter().collect::<Vec<_>>()).await?;
    for (value, sent) in stored.iter().zip(&sent) {
        ensure_kept("startAt", value.start_at, sent.start_at)?;
    }
    reached.wait_past(t + 1).await;
    let request = claim(TaskExecutionStatus::Ready, t, 10);
    ensure_claims(f, &*s, &request, &[&stored[0]]).await?;
    ensure_untouched(&*s, &[&stored[1], &stored[2]]).await
}

async fn other_status(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut failed = ready("failed");
    failed.status = TaskExecutionStatus::Failed;
    let stored = insert(f, &*s, &[&failed, &ready("a")]).await?;
    settle().await;
    ensure_eq!(
        run_claim(&*s, 10).await?,
        strings(&["a"]),
        "{OP} for status ready"
    );
    ensure_untouched(&*s, &[&stored[0]]).await?;
    let request = claim(TaskExecutionStatus::Failed, future(), 10);
    ensure_claims(f, &*s, &request, &[&stored[0]]).await?;
    Ok(())
}

async fn ordered(f: &dyn StorageFactory) -> CaseResult {
    check_order_and_limit(f, OP, ready, run_claim).await
}

async fn every_owned_shard(f: &dyn StorageFactory) -> CaseResult {
    check_every_owned_shard(f, OP, ready, run_claim).await
}

async fn unowned(f: &dyn StorageFactory) -> CaseResult {
    check_unowned_untouched(f, OP, ready, run_claim).await
}

async fn unset(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&with_unsettable(ready("a"))])
        .await?
        .remove(0);
    let removed = [
        UnsetField::RunOutput,
        UnsetField::Error,
        UnsetField::CloseExpiresAt,
    ];
    let mut request = claim(TaskExecutionStatus::Ready, future(), 10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    settle().await;
    let claimed = ensure_claims(f, &*s, &request, &[&a]).await?;
    ensure_unset(&claimed[0], &removed)
}

/// `updateExpiresAtWithStartedAt` (the engine's now plus its expire leeway) from a client far
/// behind or far ahead: it is never before the storage's `now`, so the lease is at least
/// `timeoutMs` on the storage's clock (behind: `now + timeoutMs`), and a later start (a
/// leeway, or a client ahead) is kept.
async fn lease_on_the_storage_clock(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert_in_order(f, &*s, &[&ready("behind"), &ready("ahead")]).await?;
    settle().await;
    for (value, sent) in stored.iter().zip([past(), future()]) {
        let mut request = claim(TaskExecutionStatus::Ready, future(), 1);
        request.update_expires_at_with_started_at = sent;
        let claimed = ensure_claims(f, &*s, &request, &[value]).await?;
        let started = sent.max(claimed[0].updated_at);
        ensure_eq!(
            claimed[0].expires_at,
            Some(started + value.timeout_ms),
            "expiresAt of {} (updateExpiresAtWithStartedAt sent: {sent})",
            value.execution_id
        );
    }
    Ok(())
}

/// A client far ahead passes a bound far ahead: it is the storage's `now` that bounds, so an
/// execution not yet due (its `startAt` kept ahead of the clock) is not claimed.
async fn bound_clamped(f: &dyn StorageFactory) -> CaseResult {
    let (t, _) = soon(f).await?;
    let s = storage(f, single()).await?;
    let not_due = ready_at("not-due", t + 3_600_000);
    let stored = insert(f, &*s, &[&ready("due"), &not_due]).await?;
    settle().await;
    ensure_claims(
        f,
        &*s,
        &claim(TaskExecutionStatus::Ready, future(), 10),
        &[&stored[0]],
    )
    .await?;
    ensure_untouched(&*s, &[&stored[1]]).await
}

/// A `startAt` just ahead of the storage's clock is kept; the execution is not claimable
/// before it passes (by a client far ahead), and is at once after.
async fn scheduled(f: &dyn StorageFactory) -> CaseResult {
    let (t, reached) = soon(f).await?;
    let s = storage(f, single()).await?;
    let stored = insert(f, &*s, &[&ready_at("scheduled", t)]).await?;
    ensure_kept("startAt", stored[0].start_at, t)?;
    ensure_eq!(
        run_claim(&*s, 10).await?,
        Vec::<String>::new(),
        "{OP} before startAt"
    );
    reached.wait_past(t).await;
    ensure_eq!(
        run_claim(&*s, 10).await?,
        strings(&["scheduled"]),
        "{OP} once startAt has passed"
    );
    Ok(())
}
