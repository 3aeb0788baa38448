//! The items of the module: objects, unions, tables (with fields and indexes) and operations.

use std::collections::btree_map::Entry as MapEntry;

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Fields, Item, ItemEnum, ItemStruct, Lit};

use super::access;
use super::types::{Named, TypeNames};
use crate::errors::Errors;
use crate::meta::{self, Entry, Value};
use crate::model::{
    Component, Field, Index, Name, ObjectDef, ServerTime, Table, UnionDef, UpdateMode, Variant,
};
use crate::names;
use crate::spans::{SpanRange, Spans};

const ROLES: &str = "`#[convex(object)]`, `#[convex(union)]`, `#[convex(table = \"...\")]` or \
`#[convex(operation(...))]`";
const TABLE_KEYS: &[&str] = &["table", "index"];
const INDEX_KEYS: &[&str] = &["name", "fields"];
const TABLE_FIELD_KEYS: &[&str] = &["rename", "update", "filter", "server_time", "min", "max"];
const OBJECT_FIELD_KEYS: &[&str] = &["rename", "min", "max"];
const ARGUMENT_KEYS: &[&str] = &["rename", "server_time", "min", "max"];
const VARIANT_KEYS: &[&str] = &["rename"];
const UPDATE_MODES: &[&str] = &["unset", "required"];

pub struct Declared<'a> {
    pub objects: Vec<&'a ItemStruct>,
    pub unions: Vec<&'a ItemEnum>,
    pub tables: Vec<DeclaredTable<'a>>,
    pub operations: Vec<DeclaredOperation<'a>>,
}

pub struct DeclaredTable<'a> {
    pub item: &'a ItemStruct,
    pub wire_name: Option<(String, Span)>,
    pub indexes: Vec<Entry>,
}

pub struct DeclaredOperation<'a> {
    pub item: &'a ItemStruct,
    pub operation: Entry,
    pub access: Option<Entry>,
    /// Entries other than `operation` and `access`, reported as unknown.
    pub others: Vec<Entry>,
}

/// Sorts the module's items by role.
pub fn collect<'a>(content: &'a [Item], errors: &mut Errors) -> Declared<'a> {
    let mut declared = Declared {
        objects: Vec::new(),
        unions: Vec::new(),
        tables: Vec::new(),
        operations: Vec::new(),
    };
    for item in content {
        match item {
            Item::Struct(item) => collect_struct(item, &mut declared, errors),
            Item::Enum(item) => {
                let entries = meta::convex_entries(&item.attrs, errors);
                check_no_generics(&item.generics, errors);
                match entries.as_slice() {
                    [entry] if entry.name() == "union" => {
                        meta::expect_flag(entry, errors);
                        declared.unions.push(item);
                    }
                    [] => errors.error(
                        item.ident.span(),
                        format!("`{}` has no convex role; mark it {ROLES}", item.ident),
                    ),
                    [first, ..] => errors.error(
                        first.span(),
                        "an enum is declared with exactly `#[convex(union)]`",
                    ),
                }
            }
            // The expansion is generated from the IR, which resolves types by name and emits
            // absolute paths: a `use` would be dropped, so it is refused rather than ignored.
            Item::Use(item) => errors.error(
                item.span(),
                "`use` is not needed in a `#[convex_component]` module: `Id`, `Doc` and the \
                 module's own types are resolved by name",
            ),
            other => errors.error(
                other.span(),
                "only structs and enums may stand in a `#[convex_component]` module",
            ),
        }
    }
    declared
}

fn collect_struct<'a>(item: &'a ItemStruct, declared: &mut Declared<'a>, errors: &mut Errors) {
    check_no_generics(&item.generics, errors);
    if !matches!(item.fields, Fields::Named(_)) {
        errors.error(
            item.ident.span(),
            "declared structs need named fields: `struct Name { field: Type }` (`{}` for none)",
        );
    }
    let entries = meta::convex_entries(&item.attrs, errors);
    let role = entries
        .iter()
        .find(|entry| ["object", "table", "operation"].contains(&entry.name().as_str()));
    let Some(role) = role else {
        match entries.first() {
            Some(first) => meta::unknown_key(
                first,
                "a struct's `convex` attribute",
                &["object", "table", "operation"],
                errors,
            ),
            None => errors.error(
                item.ident.span(),
                format!("`{}` has no convex role; mark it {ROLES}", item.ident),
            ),
        }
        return;
    };
    match role.name().as_str() {
        "object" => {
            meta::expect_flag(role, errors);
            for entry in &entries {
                if entry.name() != "object" {
                    meta::unknown_key(entry, "an object's attributes", &["object"], errors);
                }
            }
            declared.objects.push(item);
        }
        "table" => {
            let mut wire_name = None;
            let mut indexes = Vec::new();
            for entry in entries {
                match entry.name().as_str() {
                    "table" if wire_name.is_none() => {
                        wire_name = meta::string_value(&entry, errors)
                    }
                    "table" => errors.error(entry.span(), "duplicate key `table`"),
                    "index" => indexes.push(entry),
                    _ => meta::unknown_key(&entry, "a table's attributes", TABLE_KEYS, errors),
                }
            }
            declared.tables.push(DeclaredTable {
                item,
                wire_name,
                indexes,
            });
        }
        _ => {
            let mut operation = None;
            let mut access = None;
            let mut others = Vec::new();
            for entry in entries {
                match entry.name().as_str() {
                    "operation" if operation.is_none() => operation = Some(entry),
                    "access" if access.is_none() => access = Some(entry),
                    "operation" | "access" => {
                        errors.error(entry.span(), format!("duplicate key `{}`", entry.key))
                    }
                    _ => others.push(entry),
                }
            }
            if let Some(operation) = operation {
                declared.operations.push(DeclaredOperation {
                    item,
                    operation,
                    access,
                    others,
                });
            }
        }
    }
}

fn check_no_generics(generics: &syn::Generics, errors: &mut Errors) {
    if !generics.params.is_empty() {
        errors.error(
            generics.span(),
            "generic types are not supported in a declaration",
        );
    }
}

/// Fills the component from the declared items; `module_span` locates problems of the module
/// as a whole.
pub fn resolve(
    declared: &Declared<'_>,
    component: &mut Component,
    module_span: Span,
    spans: &mut Spans,
    errors: &mut Errors,
) {
    let type_names = type_names(declared, errors);

    for item in &declared.unions {
        component.unions.push(resolve_union(item, spans, errors));
    }
    for item in &declared.objects {
        let fields = resolve_fields(item, &type_names, FieldOwner::Object, spans, errors);
        component.objects.push(ObjectDef {
            rust_name: item.ident.to_string(),
            doc: meta::doc_of(&item.attrs),
            fields,
        });
    }
    for table in &declared.tables {
        if let Some(table) = resolve_table(table, &type_names, spans, errors) {
            component.tables.push(table);
        }
    }
    if declared.tables.is_empty() {
        // At the module's name: the whole module lacks something, no item is at fault.
        errors.error(
            module_span,
            "a component declares at least one `#[convex(table = \"...\")]` struct",
        );
    }
    for declared_operation in &declared.operations {
        if let Some(operation) =
            access::resolve_operation(declared_operation, component, &type_names, spans, errors)
        {
            component.operations.push(operation);
        }
    }
}

fn type_names(declared: &Declared<'_>, errors: &mut Errors) -> TypeNames {
    let mut type_names = TypeNames::default();
    let declare =
        |type_names: &mut TypeNames, ident: &syn::Ident, named: Named, errors: &mut Errors| {
            match type_names.names.entry(ident.to_string()) {
                MapEntry::Occupied(taken) => errors.error(
                    ident.span(),
                    format!("duplicate type name `{}`", taken.key()),
                ),
                MapEntry::Vacant(free) => {
                    free.insert(named);
                }
            }
        };
    for item in &declared.objects {
        declare(&mut type_names, &item.ident, Named::Object, errors);
    }
    for item in &declared.unions {
        declare(&mut type_names, &item.ident, Named::Union, errors);
    }
    for operation in &declared.operations {
        declare(
            &mut type_names,
            &operation.item.ident,
            Named::Operation,
            errors,
        );
    }
    for table in &declared.tables {
        let ident = &table.item.ident;
        let name = ident.to_string();
        declare(&mut type_names, ident, Named::Table, errors);
        for (suffix, named) in [
            ("Update", Named::Update(name.clone())),
            ("Unset", Named::Unset(name.clone())),
            ("Filters", Named::Filters(name.clone())),
        ] {
            match type_names.names.entry(format!("{name}{suffix}")) {
                MapEntry::Occupied(taken) => errors.error(
                    ident.span(),
                    format!(
                        "`{}` is generated for table `{name}`; rename the other item",
                        taken.key()
                    ),
                ),
                MapEntry::Vacant(free) => {
                    free.insert(named);
                }
            }
        }
    }
    type_names
}

fn resolve_union(item: &ItemEnum, spans: &mut Spans, errors: &mut Errors) -> UnionDef {
    let union_name = item.ident.to_string();
    spans.set(union_name.clone(), item.ident.span());
    let mut variants: Vec<Variant> = Vec::new();
    for variant in &item.variants {
        if !matches!(variant.fields, Fields::Unit) || variant.discriminant.is_some() {
            errors.error(
                variant.ident.span(),
                "union variants are plain names: they travel as string literals",
            );
        }
        let mut wire = names::snake_case(&variant.ident.to_string());
        for entry in meta::convex_entries(&variant.attrs, errors) {
            match entry.name().as_str() {
                "rename" => {
                    if let Some((value, _)) = meta::string_value(&entry, errors) {
                        wire = value;
                    }
                }
                _ => meta::unknown_key(&entry, "a variant's attributes", VARIANT_KEYS, errors),
            }
        }
        spans.set(
            format!("{union_name}/{}", variant.ident),
            variant.ident.span(),
        );
        variants.push(Variant {
            name: Name {
                rust: variant.ident.to_string(),
                wire,
            },
            doc: meta::doc_of(&variant.attrs),
        });
    }
    UnionDef {
        rust_name: union_name,
        doc: meta::doc_of(&item.attrs),
        variants,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FieldOwner {
    Table,
    Object,
    Operation,
}

/// The fields of a struct, with their attributes and resolved types. Records the spans of
/// `<Item>/<field>` (its name), `/type` and `/<key>` for each attribute.
pub fn resolve_fields(
    item: &ItemStruct,
    type_names: &TypeNames,
    owner: FieldOwner,
    spans: &mut Spans,
    errors: &mut Errors,
) -> Vec<Field> {
    let item_name = item.ident.to_string();
    spans.set(item_name.clone(), item.ident.span());
    let mut fields = Vec::new();
    for field in &item.fields {
        let Some(ident) = &field.ident else { continue };
        let rust = ident.to_string();
        let path = format!("{item_name}/{rust}");
        spans.set(path.clone(), ident.span());
        spans.set(format!("{path}/type"), SpanRange::of(&field.ty));
        let mut wire = names::camel_case(rust.trim_start_matches("r#"));
        let mut update = UpdateMode::Immutable;
        let mut filter = false;
        let mut server_time = None;
        let mut min = None;
        let mut max = None;
        let valid_keys = match owner {
            FieldOwner::Table => TABLE_FIELD_KEYS,
            FieldOwner::Object => OBJECT_FIELD_KEYS,
            FieldOwner::Operation => ARGUMENT_KEYS,
        };
        let entries = meta::convex_entries(&field.attrs, errors);
        meta::check_unique_keys(&entries, "a field's attributes", errors);
        for entry in entries {
            let key_path = format!("{path}/{}", entry.name());
            spans.set(key_path.clone(), entry.span());
            match (entry.name().as_str(), owner) {
                ("rename", _) => {
                    if let Some((value, span)) = meta::string_value(&entry, errors) {
                        spans.set(key_path, span);
                        wire = value;
                    }
                }
                ("update", FieldOwner::Table) => update = update_mode(&entry, errors),
                ("filter", FieldOwner::Table) => filter = meta::expect_flag(&entry, errors),
                ("server_time", FieldOwner::Table | FieldOwner::Operation) => {
                    server_time = server_time_of(&entry, errors).map(|(rule, span)| {
                        spans.set(key_path, span);
                        rule
                    });
                }
                ("server_time", FieldOwner::Object) => errors.error(
                    entry.span(),
                    "`server_time` applies to a table's fields and to operation arguments, not \
                     to the fields of an object (stored whole inside documents)",
                ),
                ("min" | "max", _) => {
                    if let Some((value, span)) = meta::integer_value(&entry, errors) {
                        spans.set(key_path, span);
                        if entry.name() == "min" {
                            min = Some(value);
                        } else {
                            max = Some(value);
                        }
                    }
                }
                _ => meta::unknown_key(&entry, "a field's attributes", valid_keys, errors),
            }
        }
        let Some((ty, optional)) = type_names.resolve_field(&field.ty, errors) else {
            continue;
        };
        fields.push(Field {
            name: Name { rust, wire },
            doc: meta::doc_of(&field.attrs),
            ty,
            optional,
            update,
            filter,
            server_time,
            min,
            max,
        });
    }
    fields
}

/// `server_time = "..."`: one of the rules (where each may stand is a check).
fn server_time_of(entry: &Entry, errors: &mut Errors) -> Option<(ServerTime, Span)> {
    let (value, span) = meta::string_value(entry, errors)?;
    let Some(rule) = ServerTime::from_name(&value) else {
        let names: Vec<String> = ServerTime::ALL
            .iter()
            .map(|rule| format!("\"{}\"", rule.as_str()))
            .collect();
        errors.error(
            span,
            format!(
                "unknown server time `{value}`; expected one of: {}",
                names.join(", ")
            ),
        );
        return None;
    };
    Some((rule, span))
}

fn update_mode(entry: &Entry, errors: &mut Errors) -> UpdateMode {
    match &entry.value {
        Value::Flag => UpdateMode::Optional,
        Value::List(items) => match items.as_slice() {
            [item] => match meta::ident_of(item)
                .map(|ident| ident.to_string())
                .as_deref()
            {
                Some("unset") => UpdateMode::Unsettable,
                Some("required") => UpdateMode::Required,
                _ => {
                    errors.error(
                        item.span(),
                        format!(
                            "unknown update mode; expected one of: {}",
                            UPDATE_MODES.join(", ")
                        ),
                    );
                    UpdateMode::Optional
                }
            },
            _ => {
                errors.error(
                    entry.span(),
                    "`update(...)` takes one mode: `update(unset)` or `update(required)`",
                );
                UpdateMode::Optional
            }
        },
        Value::Assign(expr) => {
            errors.error(
                expr.span(),
                "write `update`, `update(unset)` or `update(required)`",
            );
            UpdateMode::Optional
        }
    }
}

fn resolve_table(
    declared: &DeclaredTable<'_>,
    type_names: &TypeNames,
    spans: &mut Spans,
    errors: &mut Errors,
) -> Option<Table> {
    let item = declared.item;
    let name = item.ident.to_string();
    let fields = resolve_fields(item, type_names, FieldOwner::Table, spans, errors);
    let (wire_name, wire_span) = declared.wire_name.clone()?;
    spans.set(format!("{name}/#table"), wire_span);
    let mut indexes: Vec<Index> = Vec::new();
    for entry in &declared.indexes {
        let path = format!("{name}/#index/{}", indexes.len());
        if let Some(index) = resolve_index(entry, item, &fields, &path, spans, errors) {
            spans.set(path, entry.span());
            indexes.push(index);
        }
    }
    Some(Table {
        update_type: format!("{name}Update"),
        unset_type: format!("{name}Unset"),
        filters_type: format!("{name}Filters"),
        rust_name: name,
        wire_name,
        doc: meta::doc_of(&item.attrs),
        fields,
        indexes,
    })
}

/// `index(name = "...", fields(...))`, spans under `path` (`<Table>/#index/<i>`).
fn resolve_index(
    entry: &Entry,
    item: &ItemStruct,
    fields: &[Field],
    path: &str,
    spans: &mut Spans,
    errors: &mut Errors,
) -> Option<Index> {
    let items = meta::list_value(entry, errors)?;
    let mut name = None;
    let mut index_fields: Option<Vec<Name>> = None;
    let entries: Vec<Entry> = items
        .iter()
        .filter_map(|expr| meta::entry_of(expr, errors))
        .collect();
    meta::check_unique_keys(&entries, "`index(...)`", errors);
    for inner in &entries {
        match inner.name().as_str() {
            "name" => name = meta::string_value(inner, errors),
            "fields" => {
                let Some(list) = meta::list_value(inner, errors) else {
                    continue;
                };
                spans.set(format!("{path}/fields"), inner.span());
                let mut names_in_index: Vec<Name> = Vec::new();
                for expr in list {
                    let Some(ident) = meta::ident_of(expr) else {
                        errors.error(expr.span(), "index fields are the table's Rust field names, e.g. `fields(shard, status)`");
                        continue;
                    };
                    match fields.iter().find(|field| ident == field.name.rust) {
                        Some(field) => {
                            spans.set(format!("{path}/fields/{}", names_in_index.len()), ident.span());
                            names_in_index.push(field.name.clone());
                        }
                        None => errors.error(
                            ident.span(),
                            format!(
                                "index names field `{ident}`, which table `{}` does not have; its fields are: {}",
                                item.ident,
                                fields.iter().map(|field| field.name.rust.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        ),
                    }
                }
                if list.is_empty() {
                    errors.error(inner.span(), "an index needs at least one field");
                }
                index_fields = Some(names_in_index);
            }
            _ => meta::unknown_key(inner, "`index(...)`", INDEX_KEYS, errors),
        }
    }
    let Some((name, name_span)) = name else {
        errors.error(entry.span(), "`index(...)` needs `name = \"...\"`");
        return None;
    };
    spans.set(format!("{path}/name"), name_span);
    let Some(fields) = index_fields else {
        errors.error(entry.span(), "`index(...)` needs `fields(...)`");
        return None;
    };
    Some(Index { name, fields })
}

/// The literal of a literal expression, for bounds such as `acc = 0`.
pub fn literal_of(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(lit) => Some(&lit.lit),
        _ => None,
    }
}
