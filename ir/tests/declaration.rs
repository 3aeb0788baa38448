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
