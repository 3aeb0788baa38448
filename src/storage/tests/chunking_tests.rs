//! The chunk planner at the sizes of the issue, and at its edges.

use std::ops::Range;

use super::fixtures::{child_value, minimal_value};
use crate::runtime::{CallBudget, ConvexOperation, OperationLimits};
use crate::storage::chunking::{
    lower_limits, plan_chunks, plan_elements, split_into, ItemCost, CALL_BUDGET,
    ENVELOPE_RESERVE_BYTES,
};
use crate::storage::StorageError;
use crate::task_executions as tx;

/// Checks that `chunks` cover `0..len` in order, without gaps or overlaps.
fn assert_covers(chunks: &[Range<usize>], len: usize) {
    let mut next = 0;
    for chunk in chunks {
        assert_eq!(chunk.start, next, "chunks are consecutive: {chunks:?}");
        assert!(chunk.end > chunk.start, "no empty chunk: {chunks:?}");
        next = chunk.end;
    }
    assert_eq!(next, len);
}

/// Checks one chunk against the operation's limits and the call budget.
fn assert_within(limits: &OperationLimits, items: usize, children: usize, json_bytes: usize) {
    let (items_u64, children_u64) = (items as u64, children as u64);
    if let Some(max) = limits.max_items {
        assert!(items <= max as usize, "{items} > {max}");
    }
    assert!(items <= CALL_BUDGET.array_len as usize);
    assert!(children <= CALL_BUDGET.array_len as usize);
    let reads = items_u64 * u64::from(limits.reads_per_item)
        + children_u64 * u64::from(limits.reads_per_child);
    let writes = items_u64 * u64::from(limits.writes_per_item)
        + children_u64 * u64::from(limits.writes_per_child);
    assert!(reads <= u64::from(CALL_BUDGET.reads), "{reads} reads");
    assert!(writes <= u64::from(CALL_BUDGET.writes), "{writes} writes");
    assert!(
        json_bytes as u64 + ENVELOPE_RESERVE_BYTES <= u64::from(CALL_BUDGET.args_bytes),
        "{json_bytes} bytes"
    );
}

fn json_len<T: serde::Serialize>(items: &[T]) -> usize {
    serde_json::to_vec(items).unwrap().len()
}

#[test]
fn the_budget_is_the_servers() {
    assert_eq!(
        CALL_BUDGET,
        CallBudget {
            reads: 4_000,
            writes: 15_000,
            array_len: 8_192,
            args_bytes: 8 * 1024 * 1024,
        }
    );
}

#[test]
fn insert_many_of_20000_executions() {
    let documents: Vec<tx::TaskExecution> = (0..20_000)
        .map(|i| minimal_value(&format!("exec-{i:05}")).into_document(i % 4))
        .collect();
    let limits = tx::InsertManyArgs::LIMITS;
    let chunks = plan_elements(
        "insertMany",
        &limits,
        &documents,
        |_| 0,
        |d| d.execution_id.clone(),
    )
    .unwrap();
    let max = limits.max_items.unwrap() as usize;
    assert_eq!(chunks.len(), 20_000usize.div_ceil(max), "{chunks:?}");
    assert_covers(&chunks, documents.len());
    let parts = split_into(documents.clone(), &chunks);
    for part in &parts {
        assert_within(&limits, part.len(), 0, json_len(part));
    }
    assert_eq!(
        parts.concat(),
        documents,
        "concatenation is the input, in order"
    );
}

#[test]
fn get_many_by_id_of_10000_ids() {
    let requests: Vec<tx::ByExecutionIdRequest> = (0..10_000)
        .map(|i| tx::ByExecutionIdRequest {
            execution_id: format!("exec-{i:05}"),
            filters: None,
        })
        .collect();
    let limits = tx::GetManyByIdArgs::LIMITS;
    let chunks = plan_elements(
        "getManyById",
        &limits,
        &requests,
        |_| 0,
        |r| r.execution_id.clone(),
    )
    .unwrap();
    assert_eq!(
        chunks,
        vec![0..4_000, 4_000..8_000, 8_000..10_000],
        "4,000 reads per call"
    );
    let parts = split_into(requests.clone(), &chunks);
    for part in &parts {
        assert_within(&limits, part.len(), 0, json_len(part));
    }
    assert_eq!(parts.concat(), requests);
}

fn parent_request(parent: &str, children: u32) -> tx::UpdateByExecutionIdAndInsertChildrenRequest {
    tx::UpdateByExecutionIdAndInsertChildrenRequest {
        execution_id: parent.to_owned(),
        filters: None,
        update: tx::TaskExecutionUpdate {
            updated_at: 1,
            ..Default::default()
        },
        children_task_executions_to_insert_if_any_updated: (0..children)
            .map(|i| child_value(parent, i).into_document(0))
            .collect(),
    }
}

#[test]
fn a_parent_and_its_children_stay_in_one_call() {
    let limits = tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs::LIMITS;
    let children_per_call = (CALL_BUDGET.reads - limits.reads_per_item) / limits.reads_per_child;
    // Three parents whose children together exceed one call: each call takes whole parents.
    let big = children_per_call * 2 / 3;
    let requests = vec![
        parent_request("p0", big),
        parent_request("p1", big),
        parent_request("p2", 10),
        parent_request("p3", big),
    ];
    let chunks = plan_elements(
        "updateManyByIdAndInsertChildrenIfUpdated",
        &limits,
        &requests,
        |r| r.children_task_executions_to_insert_if_any_updated.len(),
        |r| r.execution_id.clone(),
    )
    .unwrap();
    assert_eq!(chunks, vec![0..1, 1..3, 3..4]);
    let parts = split_into(requests.clone(), &chunks);
    for part in &parts {
        let children: usize = part
            .iter()
            .map(|r| r.children_task_executions_to_insert_if_any_updated.len())
            .sum();
        assert_within(&limits, part.len(), children, json_len(part));
    }
    assert_eq!(parts.concat(), requests);
}

#[test]
fn a_parent_with_more_children_than_one_call_can_insert_is_refused() {
    let limits = tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs::LIMITS;
    let too_many = CALL_BUDGET.reads / limits.reads_per_child + 1;
    let requests = vec![parent_request("ok", 1), parent_request("huge", too_many)];
    let error = plan_elements(
        "updateManyByIdAndInsertChildrenIfUpdated",
        &limits,
        &requests,
        |r| r.children_task_executions_to_insert_if_any_updated.len(),
        |r| format!("execution \"{}\"", r.execution_id),
    )
    .unwrap_err();
    let StorageError::InvalidRequest(message) = error else {
        panic!("expected InvalidRequest, got {error:?}");
    };
    assert!(
        message.contains("element 1 (execution \"huge\")"),
        "{message}"
    );
    assert!(message.contains("nothing was sent"), "{message}");
}

#[test]
fn an_execution_too_large_for_any_call_is_named() {
    let mut documents: Vec<tx::TaskExecution> = (0..3)
        .map(|i| minimal_value(&format!("e{i}")).into_document(0))
        .collect();
    documents[2].input = "x".repeat(CALL_BUDGET.args_bytes as usize);
    let error = plan_elements(
        "insertMany",
        &tx::InsertManyArgs::LIMITS,
        &documents,
        |_| 0,
        |d| format!("execution \"{}\"", d.execution_id),
    )
    .unwrap_err();
    let StorageError::InvalidRequest(message) = error else {
        panic!("expected InvalidRequest, got {error:?}");
    };
    assert!(
        message.starts_with("insertMany: element 2 (execution \"e2\")"),
        "{message}"
    );
    assert!(message.contains("bytes of arguments"), "{message}");
}

#[test]
fn an_execution_that_cannot_be_encoded_is_named() {
    let mut documents = vec![minimal_value("e0").into_document(0)];
    documents[0].start_at = u64::MAX;
    let error = plan_elements(
        "insertMany",
        &tx::InsertManyArgs::LIMITS,
        &documents,
        |_| 0,
        |d| format!("execution \"{}\"", d.execution_id),
    )
    .unwrap_err();
    assert!(
        matches!(&error, StorageError::InvalidRequest(m) if m.contains("execution \"e0\"")),
        "{error:?}"
    );
}

fn plain(max_items: Option<u32>) -> OperationLimits {
    OperationLimits {
        max_items,
        reads_per_item: 1,
        writes_per_item: 0,
        reads_per_child: 0,
        writes_per_child: 0,
        max_limit: None,
    }
}

fn cost(json_bytes: u64) -> ItemCost {
    ItemCost {
        json_bytes,
        children: 0,
    }
}

#[test]
fn bytes_split_chunks_before_counts_do() {
    let budget = CALL_BUDGET;
    let three_mib = 3 * 1024 * 1024;
    let costs = vec![cost(three_mib); 5];
    let chunks = plan_chunks(&plain(None), &budget, &costs).unwrap();
    assert_eq!(chunks, vec![0..2, 2..4, 4..5]);
}

#[test]
fn the_array_budget_caps_items_without_max_items() {
    let costs = vec![cost(10); 10_000];
    let limits = OperationLimits {
        reads_per_item: 0,
        ..plain(None)
    };
    let chunks = plan_chunks(&limits, &CALL_BUDGET, &costs).unwrap();
    assert_eq!(chunks, vec![0..8_192, 8_192..10_000]);
}

#[test]
fn children_count_against_the_array_budget() {
    let limits = OperationLimits {
        reads_per_item: 0,
        ..plain(None)
    };
    let with_children = |children| ItemCost {
        json_bytes: 10,
        children,
    };
    let costs = vec![
        with_children(5_000),
        with_children(5_000),
        with_children(3_000),
    ];
    let chunks = plan_chunks(&limits, &CALL_BUDGET, &costs).unwrap();
    assert_eq!(chunks, vec![0..1, 1..3]);
    let oversize = plan_chunks(&limits, &CALL_BUDGET, &[with_children(8_193)]).unwrap_err();
    assert_eq!(oversize.index, 0);
    assert!(oversize.reason.contains("children"), "{}", oversize.reason);
}

#[test]
fn nothing_to_send_means_no_chunk() {
    assert!(plan_chunks(&plain(Some(5)), &CALL_BUDGET, &[])
        .unwrap()
        .is_empty());
    assert!(split_into(Vec::<u8>::new(), &[]).is_empty());
}

#[test]
fn max_items_per_call_only_lowers_the_generated_limits() {
    let insert = tx::InsertManyArgs::LIMITS; // max_items 2000
    let claim = tx::UpdateByStatusAndStartAtLessThanAndReturnArgs::LIMITS; // max_limit 4000
    assert_eq!(lower_limits(&insert, None), insert);
    assert_eq!(lower_limits(&insert, Some(100)).max_items, Some(100));
    assert_eq!(lower_limits(&insert, Some(100)).max_limit, None);
    // Never raised above what the server accepts.
    assert_eq!(
        lower_limits(&insert, Some(1_000_000)).max_items,
        insert.max_items
    );
    assert_eq!(lower_limits(&claim, Some(100)).max_limit, Some(100));
    assert_eq!(
        lower_limits(&claim, Some(1_000_000)).max_limit,
        claim.max_limit
    );
    // Costs are untouched.
    assert_eq!(
        lower_limits(&insert, Some(100)).reads_per_item,
        insert.reads_per_item
    );

    // 250 elements at 100 per call: 3 calls, in order.
    let costs = vec![
        ItemCost {
            json_bytes: 10,
            children: 0
        };
        250
    ];
    let chunks = plan_chunks(&lower_limits(&insert, Some(100)), &CALL_BUDGET, &costs).unwrap();
    assert_eq!(chunks, vec![0..100, 100..200, 200..250]);
}

#[test]
fn document_sizes_are_convexs_own_measure() {
    use crate::storage::chunking::{convex_size, document_size};
    use serde_json::json;
    // {"a": "xyz", "n": 1, "b": true, "z": null, "l": [1, "q"]}
    //   = 2 + (1+1+5) + (1+1+9) + (1+1+1) + (1+1+1) + (1+1+(2+9+3)) = 42
    let value = json!({"a": "xyz", "n": 1, "b": true, "z": null, "l": [1, "q"]});
    assert_eq!(convex_size(&value), 42);
    // Strings count their UTF-8 bytes, not JSON escapes.
    assert_eq!(convex_size(&json!("é\n")), 2 + 3);
    #[derive(serde::Serialize)]
    struct Doc {
        input: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    }
    let doc = Doc {
        input: "abc".into(),
        output: None,
    };
    assert_eq!(
        document_size(&doc).unwrap(),
        2 + 5 + 1 + 5,
        "an absent field counts nothing"
    );
}
