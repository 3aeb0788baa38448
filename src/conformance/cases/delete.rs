//! `deleteById`, `deleteAll`: only in test mode; without it, refused with
//! [`StorageError::TestModeRequired`](crate::storage::StorageError::TestModeRequired) and
//! nothing deleted.

use crate::conformance::support::*;
use crate::conformance::{Case, StorageFactory};

use super::case;

pub fn cases() -> Vec<Case> {
    vec![
        case!("deleteById/deletes_in_test_mode", delete_by_id),
        case!("deleteById/refused_without_test_mode", delete_by_id_off),
        case!("deleteById/not_found_is_ok", delete_by_id_missing),
        case!(
            "deleteById/frees_the_ids_for_a_new_insert",
            delete_by_id_frees_ids
        ),
        case!("deleteAll/deletes_every_shard_in_test_mode", delete_all),
        case!("deleteAll/refused_without_test_mode", delete_all_off),
        case!("deleteAll/empty_storage_is_ok", delete_all_empty),
    ]
}

async fn delete_by_id(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, options(1, &[], true)).await?;
    let stored = insert(
        f,
        &*s,
        &[&execution("a", past()), &sleeping("b", "ub", past())],
    )
    .await?;
    let a = &stored[0];
    s.delete_by_id("b").await?;
    ensure!(get(&*s, "b").await?.is_none(), "b is still there");
    let by_unique = s
        .get_many_by_sleeping_task_unique_id(vec![
            crate::storage::GetBySleepingTaskUniqueIdRequest {
                sleeping_task_unique_id: "ub".to_owned(),
            },
        ])
        .await?;
    ensure_eq!(by_unique, vec![None], "b by its sleeping task unique id");
    ensure_untouched(&*s, &[a]).await
}

async fn delete_by_id_off(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&execution("a", past())]).await?;
    ensure_test_mode_required(s.delete_by_id("a").await)?;
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

async fn delete_by_id_missing(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, options(1, &[], true)).await?;
    s.delete_by_id("missing").await?;
    let a = insert(f, &*s, &[&execution("a", past())]).await?;
    s.delete_by_id("missing").await?;
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

async fn delete_by_id_frees_ids(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, options(1, &[], true)).await?;
    s.insert_many(vec![sleeping("a", "ua", past())]).await?;
    s.delete_by_id("a").await?;
    let again = sleeping("a", "ua", future());
    insert(f, &*s, &[&again]).await?;
    Ok(())
}

async fn delete_all(f: &dyn StorageFactory) -> CaseResult {
    const TOTAL: u32 = 3;
    let backend = f.create().await?;
    // Owning one shard does not limit deleteAll.
    let s = backend.client(options(TOTAL, &[1], true)).await?;
    let values: Vec<_> = (0..TOTAL)
        .map(|shard| {
            sleeping(
                &id_in_shard("e", shard, TOTAL),
                &format!("u{shard}"),
                past(),
            )
        })
        .collect();
    s.insert_many(values.clone()).await?;
    s.delete_all().await?;
    for value in &values {
        ensure!(
            get(&*s, &value.execution_id).await?.is_none(),
            "{} is still there",
            value.execution_id
        );
    }
    // Ids are free again.
    insert(f, &*s, &values.iter().collect::<Vec<_>>()).await?;
    Ok(())
}

async fn delete_all_off(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, single()).await?;
    let a = insert(f, &*s, &[&execution("a", past())]).await?;
    ensure_test_mode_required(s.delete_all().await)?;
    ensure_untouched(&*s, &a.iter().collect::<Vec<_>>()).await
}

async fn delete_all_empty(f: &dyn StorageFactory) -> CaseResult {
    let s = storage(f, options(1, &[], true)).await?;
    s.delete_all().await?;
    s.delete_all().await?;
    ensure_eq!(get(&*s, "a").await?, None, "lookup after deleteAll");
    Ok(())
}

/// Fails unless `result` is a `TestModeRequired` refusal.
fn ensure_test_mode_required(result: Result<(), crate::storage::StorageError>) -> CaseResult {
    match result {
        Err(crate::storage::StorageError::TestModeRequired { .. }) => Ok(()),
        Err(error) => Err(Failure::new(format!(
            "expected TestModeRequired, got {error}"
        ))),
        Ok(()) => Err(Failure::new(
            "expected TestModeRequired, the deletion without test mode succeeded",
        )),
    }
}
