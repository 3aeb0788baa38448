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
    Component, Field, Index, IntegerKind, Name, ObjectDef, ServerTime, Table, TypeRef, UnionDef,
    UpdateMode, Variant,
};
use crate::names;

/// Convex's limits on indexes.
pub const MAX_INDEXES_PER_TABLE: usize = 32;
pub const MAX_FIELDS_PER_INDEX: usize = 16;
/// Index names Convex defines on every table.
const RESERVED_INDEX_NAMES: &[&str] = &["by_id", "by_creation_time"];

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
    errors: &mut Errors,
) {
    let type_names = type_names(declared, errors);

    for item in &declared.unions {
        component.unions.push(resolve_union(item, errors));
    }
    for item in &declared.objects {
        let fields = resolve_fields(item, &type_names, FieldOwner::Object, errors);
        check_wire_names(&fields, item, errors);
        component.objects.push(ObjectDef {
            rust_name: item.ident.to_string(),
            doc: meta::doc_of(&item.attrs),
            fields,
        });
    }
    for table in &declared.tables {
        if let Some(table) = resolve_table(table, &type_names, errors) {
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
    // At the second `table = "..."` string, which is the name at fault.
    let mut seen_tables: Vec<&str> = Vec::new();
    for (wire_name, span) in declared
        .tables
        .iter()
        .filter_map(|table| table.wire_name.as_ref())
    {
        if seen_tables.contains(&wire_name.as_str()) {
            errors.error(*span, format!("duplicate table name `{wire_name}`"));
        }
        seen_tables.push(wire_name);
    }
    for declared_operation in &declared.operations {
        let Some(operation) =
            access::resolve_operation(declared_operation, component, &type_names, errors)
        else {
            continue;
        };
        let duplicate = component
            .operations
            .iter()
            .find(|other| other.name == operation.name || other.method == operation.method);
        match duplicate {
            Some(other) => errors.error(
                declared_operation.operation.span(),
                format!(
                    "duplicate operation name `{}` (method `{}`)",
                    other.name, other.method
                ),
            ),
            None => component.operations.push(operation),
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

fn resolve_union(item: &ItemEnum, errors: &mut Errors) -> UnionDef {
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
        if variants.iter().any(|other| other.name.wire == wire) {
            errors.error(
                variant.ident.span(),
                format!("duplicate variant wire name `{wire}`"),
            );
        }
        variants.push(Variant {
            name: Name {
                rust: variant.ident.to_string(),
                wire,
            },
            doc: meta::doc_of(&variant.attrs),
        });
    }
    if variants.is_empty() {
        errors.error(item.ident.span(), "a union needs at least one variant");
    }
    UnionDef {
        rust_name: item.ident.to_string(),
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

/// The fields of a struct, with their attributes and resolved types.
pub fn resolve_fields(
    item: &ItemStruct,
    type_names: &TypeNames,
    owner: FieldOwner,
    errors: &mut Errors,
) -> Vec<Field> {
    let mut fields = Vec::new();
    for field in &item.fields {
        let Some(ident) = &field.ident else { continue };
        let rust = ident.to_string();
        let mut wire = names::camel_case(rust.trim_start_matches("r#"));
        let mut update = UpdateMode::Immutable;
        let mut update_span = None;
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
            match (entry.name().as_str(), owner) {
                ("rename", _) => {
                    if let Some((value, _)) = meta::string_value(&entry, errors) {
                        wire = value;
                    }
                }
                ("update", FieldOwner::Table) => {
                    update_span = Some(entry.span());
                    update = update_mode(&entry, errors);
                }
                ("filter", FieldOwner::Table) => filter = meta::expect_flag(&entry, errors),
                ("server_time", FieldOwner::Table | FieldOwner::Operation) => {
                    server_time = server_time_of(&entry, owner, errors);
                }
                ("server_time", FieldOwner::Object) => errors.error(
                    entry.span(),
                    "`server_time` applies to a table's fields and to operation arguments, not \
                     to the fields of an object (stored whole inside documents)",
                ),
                ("min", _) => min = meta::integer_value(&entry, errors),
                ("max", _) => max = meta::integer_value(&entry, errors),
                _ => meta::unknown_key(&entry, "a field's attributes", valid_keys, errors),
            }
        }
        let Some((ty, optional)) = type_names.resolve_field(&field.ty, errors) else {
            continue;
        };
        check_field_type(&ty, field, owner, errors);
        if let Some(span) = update_span {
            match update {
                UpdateMode::Unsettable if !optional => errors.error(
                    span,
                    format!("`update(unset)` needs an optional field: `{rust}: Option<...>`"),
                ),
                UpdateMode::Required if optional => errors.error(
                    span,
                    format!("`update(required)` needs a field that is always present, not `Option`: `{rust}`"),
                ),
                _ => {}
            }
        }
        let server_time = server_time.and_then(|(rule, span)| {
            let is_time = ty
                == (TypeRef::Integer {
                    rust: IntegerKind::U64,
                });
            if !is_time {
                errors.error(
                    span,
                    format!(
                        "`server_time` applies to times in epoch milliseconds: `{rust}` must be \
                         `u64` or `Option<u64>`"
                    ),
                );
            }
            is_time.then_some(rule)
        });
        let (min, max) = integer_bounds(&ty, &rust, min, max, errors);
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

/// `server_time = "..."`: the rule, where it may stand (stored fields take `now`,
/// `at_least_now` or `expiry`; arguments `now`, `at_least_now` or `at_most_now`).
fn server_time_of(
    entry: &Entry,
    owner: FieldOwner,
    errors: &mut Errors,
) -> Option<(ServerTime, Span)> {
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
    let problem = match (owner, rule) {
        (FieldOwner::Table, ServerTime::AtMostNow) => Some(
            "`at_most_now` lowers an argument bound (e.g. `start_at_less_than`) to the server's \
             time; a table field takes `now`, `at_least_now` or `expiry`",
        ),
        (FieldOwner::Operation, ServerTime::Expiry) => Some(
            "`expiry` applies to stored fields; an argument takes `now`, `at_least_now` or \
             `at_most_now`",
        ),
        _ => None,
    };
    if let Some(problem) = problem {
        errors.error(span, problem);
        return None;
    }
    Some((rule, span))
}

/// Declared `min`/`max`: integer fields only, within the type's wire range, `min <= max`.
fn integer_bounds(
    ty: &TypeRef,
    rust: &str,
    min: Option<(i64, Span)>,
    max: Option<(i64, Span)>,
    errors: &mut Errors,
) -> (Option<i64>, Option<i64>) {
    let TypeRef::Integer { rust: kind } = ty else {
        for (_, span) in min.iter().chain(max.iter()) {
            errors.error(
                *span,
                format!("`min` and `max` bound integer fields; `{rust}` is not an integer"),
            );
        }
        return (None, None);
    };
    let (low, high) = kind.wire_range();
    let mut in_range = |bound: Option<(i64, Span)>| {
        bound.and_then(|(value, span)| {
            if (low..=high).contains(&value) {
                Some(value)
            } else {
                errors.error(
                    span,
                    format!(
                        "{value} is outside the values of `{}` on the wire ({low}..={high})",
                        kind.rust_name()
                    ),
                );
                None
            }
        })
    };
    let (min_value, max_value) = (in_range(min), in_range(max));
    if let (Some(min_value), Some(max_value), Some((_, span))) = (min_value, max_value, max) {
        if min_value > max_value {
            errors.error(
                span,
                format!("`max = {max_value}` is below `min = {min_value}`"),
            );
            return (None, None);
        }
    }
    (min_value, max_value)
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

/// Types that cannot stand where a document's data is stored.
fn check_field_type(ty: &TypeRef, field: &syn::Field, owner: FieldOwner, errors: &mut Errors) {
    let problem = match ty {
        TypeRef::Null => Some("`()` is only a return type".to_owned()),
        TypeRef::Document { .. } => {
            Some("`Doc<T>` is only a return type; store a table's fields or an `Id<T>`".to_owned())
        }
        TypeRef::TableFields { table } | TypeRef::Update { table } | TypeRef::Unset { table } | TypeRef::Filters { table }
            if owner == FieldOwner::Table =>
        {
            Some(format!("a table cannot store `{table}`'s documents or requests; use a `#[convex(object)]` struct"))
        }
        TypeRef::Array { element } | TypeRef::Nullable { inner: element } => match element.as_ref() {
            // The integer wire check is a field-level serde helper; nested integers would
            // travel unchecked, so they are refused rather than silently truncated.
            TypeRef::Integer { .. } => Some(
                "integers inside `Vec`/`Option` below the field level are not supported; use `f64`, or an object with an integer field".to_owned(),
            ),
            _ => {
                check_field_type(element, field, owner, errors);
                None
            }
        },
        _ => None,
    };
    if let Some(problem) = problem {
        // `new_spanned` underlines the whole type; `ty.span()` is only its first token on stable.
        errors.push(syn::Error::new_spanned(&field.ty, problem));
    }
}

fn check_wire_names(fields: &[Field], item: &ItemStruct, errors: &mut Errors) {
    for (i, field) in fields.iter().enumerate() {
        let span = wire_name_span(item, &field.name.rust);
        if let Some(problem) = names::convex_name_problem(&field.name.wire) {
            errors.error(span, format!("field name: {problem}"));
        }
        if fields[..i]
            .iter()
            .any(|other| other.name.wire == field.name.wire)
        {
            errors.error(
                span,
                format!("duplicate field name `{}` on the wire", field.name.wire),
            );
        }
    }
}

/// Where a field's wire name is written: its `rename = "..."` string when renamed (the name
/// at fault is that string, not the Rust ident), otherwise its ident.
fn wire_name_span(item: &ItemStruct, rust_name: &str) -> Span {
    let field = item
        .fields
        .iter()
        .find(|field| field.ident.as_ref().is_some_and(|ident| ident == rust_name));
    // The attributes were checked (and their errors reported) when the field was resolved.
    let rename = field.and_then(|field| {
        meta::convex_entries(&field.attrs, &mut Errors::default())
            .into_iter()
            .find_map(|entry| match (entry.name().as_str(), &entry.value) {
                ("rename", Value::Assign(Expr::Lit(lit))) => Some(lit.lit.span()),
                _ => None,
            })
    });
    rename.unwrap_or_else(|| field_span(item, rust_name))
}

pub fn field_span(item: &ItemStruct, rust_name: &str) -> Span {
    item.fields
        .iter()
        .find(|field| field.ident.as_ref().is_some_and(|ident| ident == rust_name))
        .and_then(|field| field.ident.as_ref().map(syn::Ident::span))
        .unwrap_or_else(|| item.ident.span())
}

fn resolve_table(
    declared: &DeclaredTable<'_>,
    type_names: &TypeNames,
    errors: &mut Errors,
) -> Option<Table> {
    let item = declared.item;
    let fields = resolve_fields(item, type_names, FieldOwner::Table, errors);
    check_wire_names(&fields, item, errors);
    let (wire_name, wire_span) = declared.wire_name.clone()?;
    if let Some(problem) = names::convex_name_problem(&wire_name) {
        errors.error(wire_span, format!("table name: {problem}"));
    }
    let mut indexes: Vec<Index> = Vec::new();
    for entry in &declared.indexes {
        if let Some(index) = resolve_index(entry, item, &fields, errors) {
            if indexes.iter().any(|other| other.name == index.name) {
                errors.error(
                    entry.span(),
                    format!("duplicate index name `{}`", index.name),
                );
            } else {
                indexes.push(index);
            }
        }
    }
    if indexes.len() > MAX_INDEXES_PER_TABLE {
        let span = declared
            .indexes
            .get(MAX_INDEXES_PER_TABLE)
            .map_or_else(|| item.ident.span(), Entry::span);
        errors.error(
            span,
            format!(
                "table `{wire_name}` declares {} indexes; Convex allows at most {MAX_INDEXES_PER_TABLE} per table",
                indexes.len()
            ),
        );
    }
    let name = item.ident.to_string();
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

fn resolve_index(
    entry: &Entry,
    item: &ItemStruct,
    fields: &[Field],
    errors: &mut Errors,
) -> Option<Index> {
    let items = meta::list_value(entry, errors)?;
    let mut name = None;
    let mut index_fields: Option<(Vec<Name>, Span)> = None;
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
                let mut names_in_index: Vec<Name> = Vec::new();
                for expr in list {
                    let Some(ident) = meta::ident_of(expr) else {
                        errors.error(expr.span(), "index fields are the table's Rust field names, e.g. `fields(shard, status)`");
                        continue;
                    };
                    match fields.iter().find(|field| ident == field.name.rust) {
                        Some(field) if names_in_index.contains(&field.name) => {
                            errors.error(ident.span(), format!("field `{ident}` appears twice in this index"));
                        }
                        Some(field) => names_in_index.push(field.name.clone()),
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
                if list.len() > MAX_FIELDS_PER_INDEX {
                    errors.error(
                        inner.span(),
                        format!("this index has {} fields; Convex allows at most {MAX_FIELDS_PER_INDEX}", list.len()),
                    );
                }
                if list.is_empty() {
                    errors.error(inner.span(), "an index needs at least one field");
                }
                index_fields = Some((names_in_index, inner.span()));
            }
            _ => meta::unknown_key(inner, "`index(...)`", INDEX_KEYS, errors),
        }
    }
    let Some((name, name_span)) = name else {
        errors.error(entry.span(), "`index(...)` needs `name = \"...\"`");
        return None;
    };
    if let Some(problem) = names::convex_name_problem(&name) {
        errors.error(name_span, format!("index name: {problem}"));
    }
    if RESERVED_INDEX_NAMES.contains(&name.as_str()) {
        errors.error(
            name_span,
            format!("`{name}` is an index Convex defines on every table; choose another name"),
        );
    }
    let Some((fields, _)) = index_fields else {
        errors.error(entry.span(), "`index(...)` needs `fields(...)`");
        return None;
    };
    Some(Index { name, fields })
}

/// The integer of a literal expression, for bounds such as `acc = 0`.
pub fn literal_of(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(lit) => Some(&lit.lit),
        _ => None,
    }
}
