//! Tables and their indexes, against Convex's rules.

use crate::errors::Errors;
use crate::model::Component;
use crate::names;
use crate::spans::Spans;

/// Convex's limits on indexes.
pub const MAX_INDEXES_PER_TABLE: usize = 32;
pub const MAX_FIELDS_PER_INDEX: usize = 16;
/// Index names Convex defines on every table.
const RESERVED_INDEX_NAMES: &[&str] = &["by_id", "by_creation_time"];

/// Table names are Convex names, distinct (at the second `table = "..."` string).
pub fn table_names(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (i, table) in component.tables.iter().enumerate() {
        let span = spans.at(&format!("{}/#table", table.rust_name));
        if let Some(problem) = names::convex_name_problem(&table.wire_name) {
            errors.at(span, format!("table name: {problem}"));
        }
        if component.tables[..i]
            .iter()
            .any(|other| other.wire_name == table.wire_name)
        {
            errors.at(span, format!("duplicate table name `{}`", table.wire_name));
        }
    }
}

/// Index names are Convex names, not those Convex defines itself, distinct within a table.
pub fn index_names(component: &Component, spans: &Spans, errors: &mut Errors) {
    for table in &component.tables {
        for (i, index) in table.indexes.iter().enumerate() {
            let path = format!("{}/#index/{i}", table.rust_name);
            let name_span = spans.at(&format!("{path}/name"));
            if let Some(problem) = names::convex_name_problem(&index.name) {
                errors.at(name_span, format!("index name: {problem}"));
            }
            if RESERVED_INDEX_NAMES.contains(&index.name.as_str()) {
                errors.at(
                    name_span,
                    format!(
                        "`{}` is an index Convex defines on every table; choose another name",
                        index.name
                    ),
                );
            }
            if table.indexes[..i]
                .iter()
                .any(|other| other.name == index.name)
            {
                errors.at(
                    spans.at(&path),
                    format!("duplicate index name `{}`", index.name),
                );
            }
        }
    }
}

/// An index has at most 16 fields, each once (an empty `fields()` is refused as it is read).
pub fn index_fields(component: &Component, spans: &Spans, errors: &mut Errors) {
    for table in &component.tables {
        for (i, index) in table.indexes.iter().enumerate() {
            let path = format!("{}/#index/{i}/fields", table.rust_name);
            if index.fields.len() > MAX_FIELDS_PER_INDEX {
                errors.at(
                    spans.at(&path),
                    format!(
                        "this index has {} fields; Convex allows at most {MAX_FIELDS_PER_INDEX}",
                        index.fields.len()
                    ),
                );
            }
            for (j, field) in index.fields.iter().enumerate() {
                if index.fields[..j].contains(field) {
                    errors.at(
                        spans.at(&format!("{path}/{j}")),
                        format!("field `{}` appears twice in this index", field.rust),
                    );
                }
            }
        }
    }
}

/// At most 32 indexes per table (at the first one too many).
pub fn index_count(component: &Component, spans: &Spans, errors: &mut Errors) {
    for table in &component.tables {
        if table.indexes.len() > MAX_INDEXES_PER_TABLE {
            errors.at(
                spans.at(&format!(
                    "{}/#index/{MAX_INDEXES_PER_TABLE}",
                    table.rust_name
                )),
                format!(
                    "table `{}` declares {} indexes; Convex allows at most {MAX_INDEXES_PER_TABLE} per table",
                    table.wire_name,
                    table.indexes.len()
                ),
            );
        }
    }
}
