//! `updateByStatusAndStartAtLessThanAndReturn`, and the shapes every sharded range operation
//! is checked against.

use futures::future::BoxFuture;

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory};
use crate::storage::{
    TaskExecutionStorageUpdate, TaskExecutionStorageValue, TaskExecutionsStorage,
    UpdateByStatusAndStartAtLessThanRequest,
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
    ]
}

/// An execution selectable by the operation under test, whose index key is `key` (a time in
/// the past).
pub type Make = fn(&str, u64) -> TaskExecutionStorageValue;

/// Runs the operation under test with `limit`, with an update that makes what it selects no
/// longer selectable; gives the returned ids in order.
pub type Run =
    for<'a> fn(&'a dyn TaskExecutionsStorage, u32) -> BoxFuture<'a, Result<Vec<String>, Failure>>;

/// Index order (ascending key, ties by insertion) and `limit`, on one shard.
pub async fn check_order_and_limit(
    f: &dyn StorageFactory,
    op: &str,
    make: Make,
    run: Run,
) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (c, a, b, d) = (
        make("c", t + 2),
        make("a", t),
        make("b", t),
        make("d", t + 3),
    );
    insert_in_order(&*s, &[&c, &a, &b, &d]).await?;
    ensure_eq!(
        run(&*s, 3).await?,
        strings(&["a", "b", "c"]),
        "{op} with limit 3"
    );
    ensure_untouched(&*s, &[&d]).await?;
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
    let t = past();
    let mut by_shard = Vec::new();
    for shard in 0..TOTAL {
        // Inserted with descending keys, so that index order is not insertion order.
        let values: Vec<_> = (0..3)
            .map(|i| {
                make(
                    &id_in_shard(&format!("s{shard}-{i}"), shard, TOTAL),
                    t + 10 - i,
                )
            })
            .collect();
        insert_in_order(&*s, &values.iter().collect::<Vec<_>>()).await?;
        by_shard.push(values);
    }
    let expected: Vec<String> = [&by_shard[0], &by_shard[2]]
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
        &by_shard[1]
            .iter()
            .chain([&by_shard[0][0], &by_shard[2][0]])
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
        .map(|i| make(&id_in_shard(&format!("e{i}"), 0, 2), past() + i))
        .collect();
    s.insert_many(values.clone()).await?;
    ensure_eq!(
        run(&*s, 10).await?,
        Vec::<String>::new(),
        "{op} by a client owning shard 1 only"
    );
    ensure_untouched(&*s, &values.iter().collect::<Vec<_>>()).await
}

fn ready(id: &str, start_at: u64) -> TaskExecutionStorageValue {
    let mut value = execution(id, start_at);
    value.start_at = start_at;
    value
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

/// `value` as a claim with `request` leaves it.
fn claimed(
    value: &TaskExecutionStorageValue,
    request: &UpdateByStatusAndStartAtLessThanRequest,
) -> TaskExecutionStorageValue {
    let mut value = patched(value, &request.update);
    value.expires_at = Some(request.update_expires_at_with_started_at + value.timeout_ms);
    value
}

async fn claims(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (a, b) = (ready("a", t), ready("b", t + 1));
    let mut slow = ready("slow", t + 2);
    slow.timeout_ms = 60_000;
    insert_in_order(&*s, &[&a, &b, &slow]).await?;
    let request = claim(TaskExecutionStatus::Ready, t + 100, 10);
    let returned = s
        .update_by_status_and_start_at_less_than_and_return(request.clone())
        .await?;
    let expected: Vec<_> = [&a, &b, &slow]
        .iter()
        .map(|v| claimed(v, &request))
        .collect();
    ensure_eq!(
        returned,
        expected,
        "{OP}: returned executions (after the patch)"
    );
    for value in &expected {
        ensure_stored(&*s, value).await?;
    }
    ensure_eq!(
        must_get(&*s, "slow").await?.expires_at,
        Some(request.update_expires_at_with_started_at + 60_000),
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
    let mut running = ready("running", past());
    running.status = TaskExecutionStatus::Running;
    let later = ready("later", future() + 1_000);
    s.insert_many(vec![running.clone(), later.clone()]).await?;
    ensure_eq!(
        run_claim(&*s, 10).await?,
        Vec::<String>::new(),
        "{OP} with nothing ready and due"
    );
    ensure_untouched(&*s, &[&running, &later]).await
}

async fn limit_zero(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = ready("a", past());
    s.insert_many(vec![a.clone()]).await?;
    ensure_eq!(
        run_claim(&*s, 0).await?,
        Vec::<String>::new(),
        "{OP} with limit 0"
    );
    ensure_untouched(&*s, &[&a]).await
}

async fn strict_bound(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let (before, at, after) = (
        ready("before", t - 1),
        ready("at", t),
        ready("after", t + 1),
    );
    s.insert_many(vec![before.clone(), at.clone(), after.clone()])
        .await?;
    let request = claim(TaskExecutionStatus::Ready, t, 10);
    let returned = s
        .update_by_status_and_start_at_less_than_and_return(request.clone())
        .await?;
    ensure_eq!(
        ids(&returned),
        strings(&["before"]),
        "{OP} with startAtLessThan = startAt of \"at\""
    );
    ensure_stored(&*s, &claimed(&before, &request)).await?;
    ensure_untouched(&*s, &[&at, &after]).await
}

async fn other_status(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let t = past();
    let a = ready("a", t + 1);
    let mut failed = ready("failed", t);
    failed.status = TaskExecutionStatus::Failed;
    s.insert_many(vec![failed.clone(), a.clone()]).await?;
    ensure_eq!(
        run_claim(&*s, 10).await?,
        strings(&["a"]),
        "{OP} for status ready"
    );
    ensure_untouched(&*s, &[&failed]).await?;
    let request = claim(TaskExecutionStatus::Failed, future(), 10);
    let returned = s
        .update_by_status_and_start_at_less_than_and_return(request.clone())
        .await?;
    ensure_eq!(
        returned,
        vec![claimed(&failed, &request)],
        "{OP} for status failed"
    );
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
    let a = with_unsettable(ready("a", past()));
    s.insert_many(vec![a.clone()]).await?;
    let removed = [
        UnsetField::RunOutput,
        UnsetField::Error,
        UnsetField::CloseExpiresAt,
    ];
    let mut request = claim(TaskExecutionStatus::Ready, future(), 10);
    request.update.unset = Some(UnsetField::all_of(&removed));
    let returned = s
        .update_by_status_and_start_at_less_than_and_return(request.clone())
        .await?;
    let expected = claimed(&a, &request);
    ensure_unset(&expected, &removed)?;
    ensure_eq!(returned, vec![expected.clone()], "{OP}: returned");
    ensure_stored(&*s, &expected).await
}
