//! The view of `clock.ts`: the `server_time` rules of each table's fields and of each
//! operation's arguments, by wire name.

use serde::Serialize;

use durable_execution_storage_convex_ir::{Component, Field, Operation, Table, EXPIRY_GRACE_MS};

use super::docs::{js_doc, Doc};
use super::types::screaming_snake;

#[derive(Debug, Serialize)]
pub struct ClockFile {
    pub expiry_grace_ms: u64,
    pub rules: Vec<RulesConstant>,
}

/// `export const <name>: ServerTimes = { field: 'rule', ... }`.
#[derive(Debug, Serialize)]
pub struct RulesConstant {
    pub doc: Doc,
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Serialize)]
pub struct Rule {
    pub field: String,
    /// The rule's name (`at_least_now`).
    pub rule: &'static str,
}

/// The rules of a table's fields, when it has time fields.
pub fn table_constant(table: &Table) -> Option<String> {
    has_rules(&table.fields).then(|| format!("{}_SERVER_TIME", screaming_snake(&table.rust_name)))
}

/// The rules of an operation's arguments, when it has time arguments.
pub fn args_constant(operation: &Operation) -> Option<String> {
    has_rules(&operation.args)
        .then(|| format!("{}_ARGS_SERVER_TIME", screaming_snake(&operation.name)))
}

fn has_rules(fields: &[Field]) -> bool {
    fields.iter().any(|field| field.server_time.is_some())
}

fn field_rules(fields: &[Field]) -> Vec<Rule> {
    fields
        .iter()
        .filter_map(|field| {
            field.server_time.map(|rule| Rule {
                field: field.name.wire.clone(),
                rule: rule.as_str(),
            })
        })
        .collect()
}

pub fn build(component: &Component) -> ClockFile {
    let mut rules = Vec::new();
    for table in &component.tables {
        if let Some(name) = table_constant(table) {
            rules.push(RulesConstant {
                doc: js_doc(
                    &format!(
                        "The time fields of a `{}` document, on insert and on every patch.",
                        table.wire_name
                    ),
                    0,
                ),
                rules: field_rules(&table.fields),
                name,
            });
        }
    }
    for operation in &component.operations {
        if let Some(name) = args_constant(operation) {
            rules.push(RulesConstant {
                doc: js_doc(&format!("The time arguments of `{}`.", operation.name), 0),
                rules: field_rules(&operation.args),
                name,
            });
        }
    }
    ClockFile {
        expiry_grace_ms: EXPIRY_GRACE_MS,
        rules,
    }
}
