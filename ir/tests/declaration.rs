//! The project's own declaration parses, and its IR is what the generators see.

use durable_execution_storage_convex_ir::{parse_declaration_file, Access, FunctionKind};

fn declaration() -> durable_execution_storage_convex_ir::Component {
    let source = include_str!("../../src/declaration.rs");
    match parse_declaration_file(source) {
        Ok(component) => component,
        Err(error) => panic!("{}", error.render("src/declaration.rs")),
    }
}

#[test]
fn the_declaration_has_the_reference_shape() {
    let component = declaration();
    assert_eq!(component.name, "taskExecutionsStorage");
    assert_eq!(component.app_module, "taskExecutionsStorage");
    assert_eq!(component.client_name, "TaskExecutionsStorageClient");
    assert_eq!(component.tables.len(), 1);
    let table = &component.tables[0];
    assert_eq!(table.wire_name, "taskExecutions");
    assert_eq!(table.indexes.len(), 11);
    assert_eq!(component.operations.len(), 17);
    let kinds: Vec<(&str, FunctionKind)> = component
        .operations
        .iter()
        .map(|operation| (operation.name.as_str(), operation.kind))
        .collect();
    assert!(kinds.contains(&("getManyById", FunctionKind::Query)));
    assert!(kinds.contains(&("deleteAll", FunctionKind::Action)));
    let acc = table.field("active_children_count").expect("acc field");
    assert_eq!(acc.name.wire, "acc");
    let decrement = component
        .operations
        .iter()
        .find(|operation| operation.name == "updateAndDecrementParentACCByIsFinishedAndCloseStatus")
        .expect("decrement operation");
    assert!(matches!(
        decrement.access,
        Access::UpdateRange { then: Some(_), .. }
    ));
}

#[test]
fn ir_snapshot() {
    insta::assert_json_snapshot!(declaration());
}

#[test]
fn server_time_rules_are_those_of_the_spec() {
    use durable_execution_storage_convex_ir::ServerTime;
    let component = declaration();
    let table = &component.tables[0];
    let mut stored: Vec<(&str, ServerTime)> = table
        .fields
        .iter()
        .filter_map(|field| {
            field
                .server_time
                .map(|rule| (field.name.wire.as_str(), rule))
        })
        .collect();
    stored.sort();
    let mut expected = vec![
        ("createdAt", ServerTime::Now),
        ("updatedAt", ServerTime::Now),
        ("startedAt", ServerTime::Now),
        ("finishedAt", ServerTime::Now),
        ("waitingForChildrenStartedAt", ServerTime::Now),
        ("waitingForFinalizeStartedAt", ServerTime::Now),
        ("ocfpFinishedAt", ServerTime::Now),
        ("closedAt", ServerTime::Now),
        ("startAt", ServerTime::AtLeastNow),
        ("expiresAt", ServerTime::Expiry),
        ("ocfpExpiresAt", ServerTime::Expiry),
        ("closeExpiresAt", ServerTime::Expiry),
    ];
    expected.sort();
    assert_eq!(stored, expected);

    let mut arguments: Vec<(&str, &str, ServerTime)> = component
        .operations
        .iter()
        .flat_map(|operation| {
            operation.args.iter().filter_map(|field| {
                field
                    .server_time
                    .map(|rule| (operation.name.as_str(), field.name.wire.as_str(), rule))
            })
        })
        .collect();
    arguments.sort();
    let mut expected = vec![
        (
            "updateByStatusAndStartAtLessThanAndReturn",
            "startAtLessThan",
            ServerTime::AtMostNow,
        ),
        (
            "updateByStatusAndStartAtLessThanAndReturn",
            "updateExpiresAtWithStartedAt",
            ServerTime::AtLeastNow,
        ),
        (
            "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
            "expiresAtLessThan",
            ServerTime::AtMostNow,
        ),
        (
            "updateByOCFPExpiresAt",
            "ocfpExpiresAtLessThan",
            ServerTime::AtMostNow,
        ),
        (
            "updateByCloseExpiresAt",
            "closeExpiresAtLessThan",
            ServerTime::AtMostNow,
        ),
    ];
    expected.sort();
    assert_eq!(arguments, expected);
}

#[test]
fn every_shard_is_below_64() {
    let component = declaration();
    let table_shard = component.tables[0].field("shard").expect("shard");
    assert_eq!((table_shard.min, table_shard.max), (None, Some(63)));
    for operation in &component.operations {
        for field in operation.args.iter().filter(|f| f.name.rust == "shard") {
            assert_eq!(field.max, Some(63), "{}", operation.name);
        }
    }
}

#[test]
fn retry_safety_is_that_of_the_spec_table() {
    use durable_execution_storage_convex_ir::RetrySafety::{
        Idempotent, OnlyUnsent, VerifyDuplicates,
    };
    let component = declaration();
    let expected = [
        ("insertMany", VerifyDuplicates),
        ("getManyById", Idempotent),
        ("getManyBySleepingTaskUniqueId", Idempotent),
        ("updateManyById", Idempotent),
        ("updateManyByIdAndInsertChildrenIfUpdated", VerifyDuplicates),
        ("updateByStatusAndStartAtLessThanAndReturn", OnlyUnsent),
        ("updateByStatusAndOCFPStatusAndACCZeroAndReturn", OnlyUnsent),
        ("updateByCloseStatusAndReturn", OnlyUnsent),
        (
            "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
            Idempotent,
        ),
        ("updateByOCFPExpiresAt", Idempotent),
        ("updateByCloseExpiresAt", Idempotent),
        ("updateByExecutorIdAndNPCAndReturn", OnlyUnsent),
        ("getManyByParentExecutionId", Idempotent),
        ("updateManyByParentExecutionIdAndIsFinished", Idempotent),
        (
            "updateAndDecrementParentACCByIsFinishedAndCloseStatus",
            OnlyUnsent,
        ),
        ("deleteById", Idempotent),
        ("deleteAll", Idempotent),
    ];
    let actual: Vec<(&str, _)> = component
        .operations
        .iter()
        .map(|operation| (operation.name.as_str(), operation.retry))
        .collect();
    assert_eq!(actual, expected);
}

/// Every rule of the checks is broken by at least one compile-fail case of the crate's
/// `tests/compile_fail/`: run alone over the case's declaration, the rule reports something,
/// and its reviewed `.stderr` (what a user sees) shows every message the rule reports.
#[test]
fn every_check_has_a_compile_fail_case() {
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/compile_fail");
    for rule in durable_execution_storage_convex_ir::RULES {
        assert!(!rule.compile_fail.is_empty(), "{} has no case", rule.name);
        for case in rule.compile_fail {
            let read = |extension: &str| {
                let path = cases.join(format!("{case}.{extension}"));
                std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", rule.name, path.display()))
            };
            let (source, stderr) = (read("rs"), read("stderr"));
            let messages = rule
                .messages_on(&source)
                .unwrap_or_else(|| panic!("{}: {case}.rs is not Rust", rule.name));
            assert!(
                !messages.is_empty(),
                "{}: {case}.rs does not break it",
                rule.name
            );
            for message in &messages {
                assert!(
                    stderr.contains(&format!("error: {message}")),
                    "{}: {case}.stderr lacks `{message}`",
                    rule.name
                );
            }
        }
    }
}
