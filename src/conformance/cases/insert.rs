//! `insertMany`, `getManyById`, `getManyBySleepingTaskUniqueId`.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory};
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

async fn insert_every_field(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let value = full("full", past());
    s.insert_many(vec![value.clone()]).await?;
    ensure_stored(&*s, &value).await
}

async fn insert_minimal(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let (a, b) = (execution("a", past()), execution("b", past() + 1));
    s.insert_many(vec![a.clone(), b.clone()]).await?;
    ensure_untouched(&*s, &[&a, &b]).await
}

async fn insert_empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    s.insert_many(Vec::new()).await?;
    let a = execution("a", past());
    s.insert_many(vec![a.clone()]).await?;
    s.insert_many(Vec::new()).await?;
    ensure_untouched(&*s, &[&a]).await
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
    let a = execution("a", past());
    s.insert_many(vec![a.clone()]).await?;
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
    let a = sleeping("a", "unique", past());
    s.insert_many(vec![a.clone()]).await?;
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
    s.insert_many(values.clone()).await?;
    s.insert_many(vec![execution("f", past())]).await?;
    ensure_untouched(&*s, &values.iter().collect::<Vec<_>>()).await
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
    let (a, b) = (execution("a", past()), execution("b", past()));
    s.insert_many(vec![a.clone(), b.clone()]).await?;
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
    writer.insert_many(values.clone()).await?;
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
    let (a, b) = (sleeping("a", "ua", past()), sleeping("b", "ub", past()));
    s.insert_many(vec![a.clone(), b.clone(), execution("c", past())])
        .await?;
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
    writer.insert_many(values.clone()).await?;
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
