//! `insertMany`, `getManyById`, `getManyBySleepingTaskUniqueId`.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory};
use crate::conformance::{Window, EXPIRY_GRACE_MS};
use crate::storage::{
    GetByIdRequest, GetBySleepingTaskUniqueIdRequest, StorageError, TaskExecutionsStorage,
};
use crate::task_executions::{TaskExecutionFilters, TaskExecutionStatus};

use super::case;

pub fn cases() -> Vec<Case> {
    vec![
        case!("insertMany/stores_every_field_as_given", insert_every_field),
        case!("insertMany/stores_a_minimal_execution", insert_minimal),
        case!("insertMany/empty_request", insert_empty),
        case!(
            "insertMany/refuses_an_existing_execution_id",
            insert_existing_id
        ),
        case!(
            "insertMany/refuses_an_execution_id_repeated_in_the_request",
            insert_repeated_id
        ),
        case!(
            "insertMany/refuses_an_existing_sleeping_task_unique_id",
            insert_existing_unique_id
        ),
        case!(
            "insertMany/refuses_a_sleeping_task_unique_id_repeated_in_the_request",
            insert_repeated_unique_id
        ),
        case!(
            "insertMany/absent_sleeping_task_unique_ids_do_not_clash",
            insert_absent_unique_ids
        ),
        case!(
            "insertMany/places_each_execution_in_its_shard",
            insert_places_in_shards
        ),
        case!(
            "insertMany/now_fields_are_the_storage_now_whatever_was_sent",
            insert_now_fields
        ),
        case!(
            "insertMany/start_at_before_now_becomes_now_a_later_one_is_kept",
            insert_start_at
        ),
        case!(
            "insertMany/expiry_in_the_past_gets_the_grace_a_later_one_is_kept",
            insert_expiry
        ),
        case!("getManyById/answers_in_request_order", get_in_order),
        case!("getManyById/empty_request", get_empty),
        case!("getManyById/not_found", get_not_found),
        case!(
            "getManyById/filter_is_sleeping_task",
            get_filter_is_sleeping_task
        ),
        case!("getManyById/filter_status", get_filter_status),
        case!("getManyById/filter_is_finished", get_filter_is_finished),
        case!("getManyById/every_filter_must_match", get_every_filter),
        case!("getManyById/ignores_shards", get_ignores_shards),
        case!(
            "getManyBySleepingTaskUniqueId/answers_in_request_order",
            sleeping_in_order
        ),
        case!(
            "getManyBySleepingTaskUniqueId/empty_request",
            sleeping_empty
        ),
        case!(
            "getManyBySleepingTaskUniqueId/not_found",
            sleeping_not_found
        ),
        case!(
            "getManyBySleepingTaskUniqueId/ignores_shards",
            sleeping_ignores_shards
        ),
    ]
}

/// An execution with every optional field present, each with its own value.
fn full(id: &str, at: u64) -> crate::storage::TaskExecutionStorageValue {
    let mut value = with_unsettable(child("parent-of-full", id, 3, at));
    value.parent = value.parent.map(|mut parent| {
        parent.is_only_child_of_parent = true;
        parent.is_finalize_of_parent = true;
        parent
    });
    value.root = Some(summary("root-of-full"));
    value.is_sleeping_task = true;
    value.sleeping_task_unique_id = Some(format!("{id}-unique"));
    value.retry_options.max_delay_ms = Some(60_000);
    value.retry_options.delay_multiplier = Some(1.5);
    value.sleep_ms_before_run = 11;
    value.are_children_sequential = true;
    value.status = TaskExecutionStatus::WaitingForFinalize;
    value.is_finished = true;
    value.output = Some("output".to_owned());
    value.retry_attempts = 2;
    value.waiting_for_children_started_at = Some(at + 3);
    value.waiting_for_finalize_started_at = Some(at + 4);
    value.finished_at = Some(at + 5);
    value.children = Some(vec![summary("c-0"), summary("c-1")]);
    value.active_children_count = 7;
    value.on_children_finished_processing_status =
        crate::task_executions::OnChildrenFinishedProcessingStatus::Processed;
    value.on_children_finished_processing_finished_at = Some(at + 6);
    value.finalize = Some(summary("finalize"));
    value.close_status = crate::task_executions::CloseStatus::Closing;
    value.closed_at = Some(at + 9);
    value.needs_promise_cancellation = true;
    value.created_at = at - 1;
    value
}

/// Every field as sent, but the times, which follow the storage's clock (checked by
/// [`insert`]).
async fn insert_every_field(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let value = full("full", past());
    insert(f, &*s, &[&value]).await?;
    Ok(())
}

async fn insert_minimal(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (a, b) = (execution("a", past()), execution("b", future()));
    insert(f, &*s, &[&a, &b]).await?;
    Ok(())
}

async fn insert_empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(Vec::new()).await?;
    let a = insert(f, &*s, &[&execution("a", past())]).await?;
    s.insert_many(Vec::new()).await?;
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

/// Fails unless `result` is an `AlreadyExists` refusal.
fn ensure_already_exists(result: Result<(), StorageError>) -> CaseResult {
    match result {
        Err(error) if error.is_already_exists() => Ok(()),
        Err(error) => Err(Failure::new(format!("expected AlreadyExists, got {error}"))),
        Ok(()) => Err(Failure::new("expected AlreadyExists, the call succeeded")),
    }
}

async fn ensure_absent(s: &dyn TaskExecutionsStorage, ids: &[&str]) -> CaseResult {
    for id in ids {
        ensure!(
            get(s, id).await?.is_none(),
            "{id} of the refused request was stored"
        );
    }
    Ok(())
}

async fn insert_existing_id(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&execution("a", past())]).await?.remove(0);
    let mut again = execution("a", past() + 5);
    again.input = "other".to_owned();
    let result = s.insert_many(vec![execution("b", past()), again]).await;
    ensure_already_exists(result)?;
    ensure_absent(&*s, &["b"]).await?;
    ensure_untouched(&*s, &[&a]).await
}

async fn insert_repeated_id(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let result = s
        .insert_many(vec![
            execution("b", past()),
            execution("a", past()),
            execution("a", past()),
        ])
        .await;
    ensure_already_exists(result)?;
    ensure_absent(&*s, &["a", "b"]).await
}

async fn insert_existing_unique_id(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&sleeping("a", "unique", past())])
        .await?
        .remove(0);
    let result = s
        .insert_many(vec![
            execution("b", past()),
            sleeping("c", "unique", past()),
        ])
        .await;
    ensure_already_exists(result)?;
    ensure_absent(&*s, &["b", "c"]).await?;
    ensure_untouched(&*s, &[&a]).await
}

async fn insert_repeated_unique_id(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let result = s
        .insert_many(vec![
            sleeping("a", "unique", past()),
            sleeping("b", "unique", past()),
        ])
        .await;
    ensure_already_exists(result)?;
    ensure_absent(&*s, &["a", "b"]).await
}

async fn insert_absent_unique_ids(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let values: Vec<_> = (0..5)
        .map(|i| execution(&format!("e{i}"), past()))
        .collect();
    let stored = insert(f, &*s, &values.iter().collect::<Vec<_>>()).await?;
    insert(f, &*s, &[&execution("f", past())]).await?;
    ensure_untouched(&*s, &stored.iter().collect::<Vec<_>>()).await
}

/// Placement is observable through the sharded claim: a client owning one shard claims
/// exactly the executions `shard_of_execution` puts there.
async fn insert_places_in_shards(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 4;
    let backend = f.create().await?;
    let writer = backend.client(options(TOTAL, &[], false)).await?;
    let ids: Vec<String> = (0..24).map(|i| format!("placed-{i}")).collect();
    writer
        .insert_many(ids.iter().map(|id| execution(id, past())).collect())
        .await?;
    settle().await;
    for shard in 0..TOTAL {
        let reader = backend.client(options(TOTAL, &[shard], false)).await?;
        let claimed = reader
            .update_by_status_and_start_at_less_than_and_return(claim_request(100))
            .await?;
        let mut got = super::super::support::ids(&claimed);
        got.sort();
        let mut expected: Vec<String> = ids
            .iter()
            .filter(|id| crate::storage::shard_of_execution(id, TOTAL) == shard)
            .cloned()
            .collect();
        expected.sort();
        ensure_eq!(got, expected, "executions claimed from shard {shard}");
    }
    Ok(())
}

fn claim_request(limit: u32) -> crate::storage::UpdateByStatusAndStartAtLessThanRequest {
    crate::storage::UpdateByStatusAndStartAtLessThanRequest {
        status: TaskExecutionStatus::Ready,
        start_at_less_than: future(),
        update: crate::storage::TaskExecutionStorageUpdate {
            status: Some(TaskExecutionStatus::Running),
            ..touch(past())
        },
        update_expires_at_with_started_at: past(),
        limit,
    }
}

fn by_id(id: &str, filters: Option<TaskExecutionFilters>) -> GetByIdRequest {
    GetByIdRequest {
        execution_id: id.to_owned(),
        filters,
    }
}

async fn get_in_order(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let stored = insert(f, &*s, &[&execution("a", past()), &execution("b", past())]).await?;
    let (a, b) = (stored[0].clone(), stored[1].clone());
    let answers = s
        .get_many_by_id(vec![
            by_id("b", None),
            by_id("missing", None),
            by_id("a", None),
            by_id("b", None),
        ])
        .await?;
    ensure_eq!(
        answers,
        vec![Some(b.clone()), None, Some(a), Some(b)],
        "answers"
    );
    Ok(())
}

async fn get_empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![execution("a", past())]).await?;
    ensure_eq!(
        s.get_many_by_id(Vec::new()).await?,
        Vec::<Option<_>>::new(),
        "answers"
    );
    Ok(())
}

async fn get_not_found(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        s.get_many_by_id(vec![by_id("a", None)]).await?,
        vec![None],
        "answer on an empty storage"
    );
    s.insert_many(vec![execution("a", past())]).await?;
    ensure_eq!(
        s.get_many_by_id(vec![by_id("A", None)]).await?,
        vec![None],
        "answer for another id"
    );
    Ok(())
}

/// Asks `id` with each filter set; `matching` says which must find it.
async fn check_filters(
    s: &dyn TaskExecutionsStorage,
    id: &str,
    cases: Vec<(TaskExecutionFilters, bool)>,
) -> CaseResult {
    let expected = must_get(s, id).await?;
    for (filters, matching) in cases {
        let answers = s
            .get_many_by_id(vec![by_id(id, Some(filters.clone()))])
            .await?;
        let wanted = if matching {
            vec![Some(expected.clone())]
        } else {
            vec![None]
        };
        ensure_eq!(answers, wanted, "answer with filters {filters:?}");
    }
    Ok(())
}

async fn get_filter_is_sleeping_task(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![sleeping("s", "u", past()), execution("e", past())])
        .await?;
    check_filters(
        &*s,
        "s",
        vec![
            (filters(Some(true), None, None), true),
            (filters(Some(false), None, None), false),
        ],
    )
    .await?;
    check_filters(
        &*s,
        "e",
        vec![
            (filters(Some(false), None, None), true),
            (filters(Some(true), None, None), false),
        ],
    )
    .await
}

async fn get_filter_status(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![execution("e", past())]).await?;
    let mut cases = vec![(filters(None, None, None), true)];
    for &status in TaskExecutionStatus::ALL {
        cases.push((
            filters(None, Some(status), None),
            status == TaskExecutionStatus::Ready,
        ));
    }
    check_filters(&*s, "e", cases).await
}

async fn get_filter_is_finished(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let mut done = execution("done", past());
    done.is_finished = true;
    s.insert_many(vec![done, execution("e", past())]).await?;
    check_filters(
        &*s,
        "done",
        vec![
            (filters(None, None, Some(true)), true),
            (filters(None, None, Some(false)), false),
        ],
    )
    .await?;
    check_filters(
        &*s,
        "e",
        vec![
            (filters(None, None, Some(false)), true),
            (filters(None, None, Some(true)), false),
        ],
    )
    .await
}

async fn get_every_filter(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![execution("e", past())]).await?;
    let ready = Some(TaskExecutionStatus::Ready);
    check_filters(
        &*s,
        "e",
        vec![
            (filters(Some(false), ready, Some(false)), true),
            (filters(Some(true), ready, Some(false)), false),
            (
                filters(Some(false), Some(TaskExecutionStatus::Running), Some(false)),
                false,
            ),
            (filters(Some(false), ready, Some(true)), false),
        ],
    )
    .await
}

async fn get_ignores_shards(f: &dyn StorageFactory) -> CaseResult {
    let backend = f.create().await?;
    let writer = backend.client(options(3, &[], false)).await?;
    let reader = backend.client(options(3, &[0], false)).await?;
    let values: Vec<_> = (0..3)
        .map(|shard| execution(&id_in_shard("e", shard, 3), past()))
        .collect();
    let values = insert(f, &*writer, &values.iter().collect::<Vec<_>>()).await?;
    let requests = values
        .iter()
        .map(|v| by_id(&v.execution_id, None))
        .collect();
    let answers = reader.get_many_by_id(requests).await?;
    ensure_eq!(
        answers,
        values.into_iter().map(Some).collect::<Vec<_>>(),
        "answers from a client owning shard 0 only"
    );
    Ok(())
}

fn by_unique(id: &str) -> GetBySleepingTaskUniqueIdRequest {
    GetBySleepingTaskUniqueIdRequest {
        sleeping_task_unique_id: id.to_owned(),
    }
}

async fn sleeping_in_order(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (a, b, c) = (
        sleeping("a", "ua", past()),
        sleeping("b", "ub", past()),
        execution("c", past()),
    );
    let stored = insert(f, &*s, &[&a, &b, &c]).await?;
    let (a, b) = (stored[0].clone(), stored[1].clone());
    let answers = s
        .get_many_by_sleeping_task_unique_id(vec![
            by_unique("ub"),
            by_unique("missing"),
            by_unique("ua"),
            by_unique("ub"),
        ])
        .await?;
    ensure_eq!(
        answers,
        vec![Some(b.clone()), None, Some(a), Some(b)],
        "answers"
    );
    Ok(())
}

async fn sleeping_empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(vec![sleeping("a", "ua", past())]).await?;
    ensure_eq!(
        s.get_many_by_sleeping_task_unique_id(Vec::new()).await?,
        Vec::<Option<_>>::new(),
        "answers"
    );
    Ok(())
}

async fn sleeping_not_found(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    ensure_eq!(
        s.get_many_by_sleeping_task_unique_id(vec![by_unique("ua")])
            .await?,
        vec![None],
        "answer on an empty storage"
    );
    s.insert_many(vec![sleeping("a", "ua", past())]).await?;
    // The execution id is not a sleeping task unique id.
    ensure_eq!(
        s.get_many_by_sleeping_task_unique_id(vec![by_unique("a")])
            .await?,
        vec![None],
        "answer for the execution id"
    );
    Ok(())
}

async fn sleeping_ignores_shards(f: &dyn StorageFactory) -> CaseResult {
    let backend = f.create().await?;
    let writer = backend.client(options(3, &[], false)).await?;
    let reader = backend.client(options(3, &[2], false)).await?;
    let values: Vec<_> = (0..3)
        .map(|shard| {
            let id = id_in_shard("s", shard, 3);
            sleeping(&id, &format!("u-{id}"), past())
        })
        .collect();
    let values = insert(f, &*writer, &values.iter().collect::<Vec<_>>()).await?;
    let requests = values
        .iter()
        .map(|v| by_unique(v.sleeping_task_unique_id.as_deref().unwrap_or_default()))
        .collect();
    let answers = reader.get_many_by_sleeping_task_unique_id(requests).await?;
    ensure_eq!(
        answers,
        values.into_iter().map(Some).collect::<Vec<_>>(),
        "answers from a client owning shard 2 only"
    );
    Ok(())
}

/// Every `now` field of `value` (those present) with its name.
pub fn now_fields(
    value: &crate::storage::TaskExecutionStorageValue,
) -> Vec<(&'static str, Option<u64>)> {
    vec![
        ("createdAt", Some(value.created_at)),
        ("updatedAt", Some(value.updated_at)),
        ("startedAt", value.started_at),
        ("finishedAt", value.finished_at),
        (
            "waitingForChildrenStartedAt",
            value.waiting_for_children_started_at,
        ),
        (
            "waitingForFinalizeStartedAt",
            value.waiting_for_finalize_started_at,
        ),
        (
            "ocfpFinishedAt",
            value.on_children_finished_processing_finished_at,
        ),
        ("closedAt", value.closed_at),
    ]
}

/// Every `now` field of the stored `value` is `now`, whatever was sent.
pub fn ensure_now_fields(
    value: &crate::storage::TaskExecutionStorageValue,
    now: u64,
) -> CaseResult {
    for (field, at) in now_fields(value) {
        let at = at.ok_or_else(|| {
            Failure::new(format!("{field} of {} was dropped", value.execution_id))
        })?;
        ensure_eq!(
            at,
            now,
            "{field} of {}: the storage's now",
            value.execution_id
        );
    }
    Ok(())
}

/// An execution whose every `now` field is present and set to `at`.
pub fn with_every_stamp(id: &str, at: u64) -> crate::storage::TaskExecutionStorageValue {
    let mut value = execution(id, at);
    value.started_at = Some(at);
    value.finished_at = Some(at);
    value.waiting_for_children_started_at = Some(at);
    value.waiting_for_finalize_started_at = Some(at);
    value.on_children_finished_processing_finished_at = Some(at);
    value.closed_at = Some(at);
    value
}

/// A client far behind and one far ahead insert in one call: every `now` field of both is
/// the storage's `now` of that call, in the call's window.
async fn insert_now_fields(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (behind, ahead) = (
        with_every_stamp("behind", past()),
        with_every_stamp("ahead", future()),
    );
    let window = Window::open(f, &*s);
    s.insert_many(vec![behind, ahead]).await?;
    let window = window.close(&*s);
    let (behind, ahead) = (
        must_get(&*s, "behind").await?,
        must_get(&*s, "ahead").await?,
    );
    let now = behind.updated_at;
    window.ensure_contains(now, "the now of the insert")?;
    ensure_now_fields(&behind, now)?;
    ensure_now_fields(&ahead, now)
}

/// `startAt` before the storage's clock becomes its `now`; later, it is kept.
async fn insert_start_at(f: &dyn StorageFactory) -> CaseResult {
    let (later, _) = soon(f).await?;
    let s = storage(f, single()).await?;
    let mut overdue = execution("overdue", past());
    overdue.start_at = past();
    let mut scheduled = execution("scheduled", past());
    scheduled.start_at = later;
    let mut far = execution("far", past());
    far.start_at = future();
    let stored = insert(f, &*s, &[&overdue, &scheduled, &far]).await?;
    ensure_eq!(
        stored[0].start_at,
        stored[0].updated_at,
        "startAt sent long ago"
    );
    ensure_kept("startAt", stored[1].start_at, later)?;
    ensure_eq!(stored[2].start_at, future(), "startAt sent far ahead");
    Ok(())
}

/// An expiry time before the storage's clock becomes `now + 1 s`; later, it is kept.
async fn insert_expiry(f: &dyn StorageFactory) -> CaseResult {
    let (later, _) = soon(f).await?;
    let s = storage(f, single()).await?;
    let mut overdue = execution("overdue", past());
    overdue.expires_at = Some(past());
    overdue.on_children_finished_processing_expires_at = Some(past());
    overdue.close_expires_at = Some(0);
    let mut kept = execution("kept", past());
    kept.expires_at = Some(later);
    kept.on_children_finished_processing_expires_at = Some(later + 1);
    kept.close_expires_at = Some(future());
    let stored = insert(f, &*s, &[&overdue, &kept]).await?;
    let now = stored[0].updated_at;
    let graced = Some(now + EXPIRY_GRACE_MS);
    ensure_eq!(stored[0].expires_at, graced, "expiresAt sent long ago");
    ensure_eq!(
        stored[0].on_children_finished_processing_expires_at,
        graced,
        "ocfpExpiresAt sent long ago"
    );
    ensure_eq!(
        stored[0].close_expires_at,
        graced,
        "closeExpiresAt sent as 0"
    );
    ensure_kept("expiresAt", stored[1].expires_at.unwrap_or(0), later)?;
    ensure_kept(
        "ocfpExpiresAt",
        stored[1]
            .on_children_finished_processing_expires_at
            .unwrap_or(0),
        later + 1,
    )?;
    ensure_eq!(
        stored[1].close_expires_at,
        Some(future()),
        "closeExpiresAt sent far ahead"
    );
    Ok(())
}
