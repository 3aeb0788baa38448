//! Operations: `#[convex(operation(...))]` and the access pattern of `#[convex(access(...))]`,
//! checked against the table's fields and the index's field order.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Lit, UnOp};

use super::items::{self, DeclaredOperation, FieldOwner};
use super::types::TypeNames;
use crate::errors::Errors;
use crate::meta::{self, Entry, Value};
use crate::model::{
    Access, AddAssign, AfterUpdate, Bound, BoundValue, Component, EachRef, Field, FunctionKind,
    Index, InsertChildren, Literal, Name, Operation, RangeReturns, RetrySafety, Table, TypeRef,
};
use crate::names;

const OPERATION_KEYS: &[&str] = &[
    "name",
    "kind",
    "returns",
    "test_only",
    "method",
    "table",
    "retry",
];
const KINDS: &[&str] = &["query", "mutation", "action"];
const PATTERNS: &[&str] = &[
    "insert",
    "get_each",
    "update_each",
    "update_range",
    "delete_one",
    "delete_all",
];
const AFTER_UPDATE_STEPS: &[&str] = &["decrement_parent_active_children_count"];

pub fn resolve_operation(
    declared: &DeclaredOperation<'_>,
    component: &Component,
    type_names: &TypeNames,
    errors: &mut Errors,
) -> Option<Operation> {
    let item = declared.item;
    for other in &declared.others {
        meta::unknown_key(
            other,
            "an operation's attributes",
            &["operation", "access"],
            errors,
        );
    }
    let entries: Vec<Entry> = meta::list_value(&declared.operation, errors)?
        .iter()
        .filter_map(|expr| meta::entry_of(expr, errors))
        .collect();
    meta::check_unique_keys(&entries, "`operation(...)`", errors);

    let mut name = None;
    let mut kind = None;
    let mut returns = None;
    let mut test_only = false;
    let mut method = None;
    let mut table_name = None;
    let mut retry = None;
    for entry in &entries {
        match entry.name().as_str() {
            "name" => name = meta::string_value(entry, errors),
            "kind" => {
                kind = meta::string_value(entry, errors).and_then(|(value, span)| {
                    let kind = match value.as_str() {
                        "query" => Some(FunctionKind::Query),
                        "mutation" => Some(FunctionKind::Mutation),
                        "action" => Some(FunctionKind::Action),
                        _ => None,
                    };
                    if kind.is_none() {
                        errors.error(
                            span,
                            format!(
                                "unknown kind `{value}`; expected one of: {}",
                                KINDS.join(", ")
                            ),
                        );
                    }
                    kind.map(|kind| (kind, span))
                })
            }
            "returns" => returns = meta::string_value(entry, errors),
            "test_only" => test_only = meta::expect_flag(entry, errors),
            "method" => method = meta::string_value(entry, errors),
            "table" => table_name = meta::string_value(entry, errors),
            "retry" => {
                retry = meta::string_value(entry, errors).and_then(|(value, span)| {
                    let safety = RetrySafety::from_name(&value);
                    if safety.is_none() {
                        let names: Vec<String> = RetrySafety::ALL
                            .iter()
                            .map(|safety| format!("\"{}\"", safety.as_str()))
                            .collect();
                        errors.error(
                            span,
                            format!(
                                "unknown retry safety `{value}`; expected one of: {}",
                                names.join(", ")
                            ),
                        );
                    }
                    safety.map(|safety| (safety, span))
                })
            }
            _ => meta::unknown_key(entry, "`operation(...)`", OPERATION_KEYS, errors),
        }
    }
    let operation_span = declared.operation.span();
    let missing = |errors: &mut Errors, key: &str, example: &str| {
        errors.error(
            operation_span,
            format!("`operation(...)` needs `{key} = {example}`"),
        );
    };
    if name.is_none() {
        missing(errors, "name", "\"insertMany\"");
    }
    if kind.is_none() && !entries.iter().any(|entry| entry.name() == "kind") {
        missing(errors, "kind", "\"query\" | \"mutation\" | \"action\"");
    }
    if returns.is_none() {
        missing(errors, "returns", "\"Vec<Doc<Table>>\"");
    }

    let args = items::resolve_fields(item, type_names, FieldOwner::Operation, errors);
    for field in &args {
        if let Some(problem) = names::convex_name_problem(&field.name.wire) {
            errors.error(
                items::field_span(item, &field.name.rust),
                format!("argument name: {problem}"),
            );
        }
    }
    let table = resolve_table(component, table_name, operation_span, errors)?;

    let (name, name_span) = name?;
    if !is_js_identifier(&name) {
        errors.error(
            name_span,
            format!("`{name}` is not a JavaScript identifier"),
        );
    }
    let method = match method {
        Some((method, span)) => {
            if syn::parse_str::<syn::Ident>(&method).is_err() {
                errors.error(span, format!("`{method}` is not a Rust method name"));
            }
            method
        }
        None => names::snake_case(&name),
    };
    let (kind, kind_span) = kind?;
    let (returns_text, returns_span) = returns?;
    let returns = match syn::parse_str::<syn::Type>(&returns_text) {
        Ok(ty) => {
            let mut type_errors = Errors::default();
            let resolved = type_names.resolve(&ty, &mut type_errors);
            if !type_errors.is_empty() {
                // Point at the string literal: spans inside a parsed string are not the user's.
                for error in type_errors.into_error() {
                    errors.error(returns_span, error.to_string());
                }
            }
            resolved?
        }
        Err(error) => {
            errors.error(
                returns_span,
                format!("`returns` is not a Rust type: {error}"),
            );
            return None;
        }
    };

    let Some(access_entry) = &declared.access else {
        errors.error(
            item.ident.span(),
            format!(
                "operation `{name}` needs `#[convex(access(<pattern>, ...))]` saying what it reads \
                 and writes; patterns: {}",
                PATTERNS.join(", ")
            ),
        );
        return None;
    };
    let scope = Scope {
        component,
        table,
        args: &args,
    };
    let mut access = scope.resolve_access(access_entry, errors)?;
    if let Access::UpdateRange {
        returns: range_returns,
        ..
    } = &mut access
    {
        *range_returns = match &returns {
            TypeRef::Integer { .. } => RangeReturns::Count,
            TypeRef::Array { element }
                if **element
                    == (TypeRef::Document {
                        table: table.rust_name.clone(),
                    }) =>
            {
                RangeReturns::Documents
            }
            _ => {
                errors.error(
                    returns_span,
                    format!(
                        "`update_range` returns the patched documents (`Vec<Doc<{0}>>`) or their \
                         count (an integer), not `{returns_text}`",
                        table.rust_name
                    ),
                );
                RangeReturns::Documents
            }
        };
    }

    check_returns(
        &access,
        &returns,
        table,
        &returns_text,
        returns_span,
        errors,
    );
    if kind == FunctionKind::Query && writes(&access) {
        errors.error(
            kind_span,
            "a query cannot write: declare this operation as a mutation or an action",
        );
    }
    let retry = match retry {
        Some((safety, span))
            if kind == FunctionKind::Query && safety != RetrySafety::Idempotent =>
        {
            errors.error(
                span,
                format!(
                    "a query never writes, so re-sending it is always safe: its retry is \
                     \"idempotent\", not \"{}\"",
                    safety.as_str()
                ),
            );
            RetrySafety::Idempotent
        }
        Some((safety, _)) => safety,
        None => RetrySafety::default_for(kind),
    };

    Some(Operation {
        name,
        method,
        args_type: item.ident.to_string(),
        doc: meta::doc_of(&item.attrs),
        kind,
        args,
        returns,
        test_only,
        retry,
        table: table.rust_name.clone(),
        access,
    })
}

fn resolve_table<'c>(
    component: &'c Component,
    table_name: Option<(String, Span)>,
    span: Span,
    errors: &mut Errors,
) -> Option<&'c Table> {
    match (table_name, component.tables.as_slice()) {
        (Some((name, span)), tables) => {
            let table = tables.iter().find(|table| table.rust_name == name);
            if table.is_none() {
                errors.error(span, format!("no table `{name}` in this module"));
            }
            table
        }
        (None, [table]) => Some(table),
        (None, []) => None,
        (None, _) => {
            errors.error(
                span,
                "this module has several tables: name one with `table = \"...\"`",
            );
            None
        }
    }
}

fn writes(access: &Access) -> bool {
    !matches!(access, Access::GetEach { .. })
}

fn check_returns(
    access: &Access,
    returns: &TypeRef,
    table: &Table,
    returns_text: &str,
    span: Span,
    errors: &mut Errors,
) {
    let document = || TypeRef::Document {
        table: table.rust_name.clone(),
    };
    let (expected, shown): (Vec<TypeRef>, String) = match access {
        Access::GetEach { first: true, .. } => (
            vec![TypeRef::Array {
                element: Box::new(TypeRef::Nullable {
                    inner: Box::new(document()),
                }),
            }],
            format!("Vec<Option<Doc<{}>>>", table.rust_name),
        ),
        Access::GetEach { first: false, .. } => (
            vec![TypeRef::Array {
                element: Box::new(TypeRef::Array {
                    element: Box::new(document()),
                }),
            }],
            format!("Vec<Vec<Doc<{}>>>", table.rust_name),
        ),
        Access::UpdateRange { .. } => {
            // Either the documents or their count; the pattern was set from `returns`.
            return;
        }
        _ => (vec![TypeRef::Null], "()".to_owned()),
    };
    if !expected.contains(returns) {
        errors.error(
            span,
            format!("this access pattern returns `{shown}`, not `{returns_text}`"),
        );
    }
}

fn is_js_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == '$')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '$')
}

/// What an access pattern may refer to.
struct Scope<'a> {
    component: &'a Component,
    table: &'a Table,
    args: &'a [Field],
}

/// The entries of `access(...)` after the pattern, taken one key at a time.
struct AccessEntries {
    entries: Vec<Entry>,
    pattern: String,
    valid: &'static [&'static str],
}

impl AccessEntries {
    fn take(&mut self, key: &str) -> Option<Entry> {
        let position = self.entries.iter().position(|entry| entry.name() == key)?;
        Some(self.entries.remove(position))
    }

    fn require(&mut self, key: &str, span: Span, errors: &mut Errors) -> Option<Entry> {
        let entry = self.take(key);
        if entry.is_none() {
            errors.error(
                span,
                format!("`access({}, ...)` needs `{key}`", self.pattern),
            );
        }
        entry
    }

    fn flag(&mut self, key: &str, errors: &mut Errors) -> bool {
        self.take(key)
            .is_some_and(|entry| meta::expect_flag(&entry, errors))
    }

    /// Reports what no one took.
    fn finish(self, errors: &mut Errors) {
        let context = format!("`access({}, ...)`", self.pattern);
        for entry in &self.entries {
            meta::unknown_key(entry, &context, self.valid, errors);
        }
    }
}

impl Scope<'_> {
    fn resolve_access(&self, entry: &Entry, errors: &mut Errors) -> Option<Access> {
        let items = meta::list_value(entry, errors)?;
        let mut entries: Vec<Entry> = items
            .iter()
            .filter_map(|expr| meta::entry_of(expr, errors))
            .collect();
        let span = entry.span();
        if entries.is_empty() || !matches!(entries[0].value, Value::Flag) {
            errors.error(
                span,
                format!(
                    "`access(...)` starts with its pattern, one of: {}",
                    PATTERNS.join(", ")
                ),
            );
            return None;
        }
        let pattern_entry = entries.remove(0);
        meta::check_unique_keys(&entries, "`access(...)`", errors);
        let pattern = pattern_entry.name();
        let valid: &'static [&'static str] = match pattern.as_str() {
            "insert" => &["each", "unique"],
            "get_each" => &["each", "index", "eq", "filters", "first"],
            "update_each" => &[
                "each",
                "index",
                "eq",
                "filters",
                "update",
                "first",
                "insert_children",
                "parent_link",
                "unique",
            ],
            "update_range" => &["index", "eq", "gte", "lt", "limit", "update", "add", "then"],
            "delete_one" => &["index", "eq"],
            "delete_all" => &[],
            _ => {
                errors.error(
                    pattern_entry.span(),
                    format!(
                        "unknown access pattern `{pattern}`; expected one of: {}",
                        PATTERNS.join(", ")
                    ),
                );
                return None;
            }
        };
        let mut entries = AccessEntries {
            entries,
            pattern: pattern.clone(),
            valid,
        };
        let access = match pattern.as_str() {
            "insert" => self.insert(&mut entries, span, errors),
            "get_each" => self.get_each(&mut entries, span, errors),
            "update_each" => self.update_each(&mut entries, span, errors),
            "update_range" => self.update_range(&mut entries, span, errors),
            "delete_one" => self.delete_one(&mut entries, span, errors),
            _ => Some(Access::DeleteAll),
        };
        entries.finish(errors);
        access
    }

    fn insert(
        &self,
        entries: &mut AccessEntries,
        span: Span,
        errors: &mut Errors,
    ) -> Option<Access> {
        let each = entries.require("each", span, errors);
        let unique = entries.take("unique");
        let each = self.table_fields_list(each.as_ref()?, self.args, errors)?;
        let unique_indexes = match unique {
            Some(unique) => self.unique_indexes(&unique, errors),
            None => Vec::new(),
        };
        Some(Access::Insert {
            each,
            unique_indexes,
        })
    }

    fn get_each(
        &self,
        entries: &mut AccessEntries,
        span: Span,
        errors: &mut Errors,
    ) -> Option<Access> {
        let each = entries.require("each", span, errors);
        let index = entries.require("index", span, errors);
        let eq = entries.require("eq", span, errors);
        let eq_span = eq.as_ref().map_or(span, Entry::span);
        let filters = entries.take("filters");
        let first = entries.flag("first", errors);
        let (each, element) = self.each(each.as_ref()?, errors)?;
        let index = self.index(index.as_ref()?, errors)?;
        let eq = self.bounds(eq.as_ref()?, &element.fields, errors);
        let filters = filters.and_then(|entry| self.filters(&entry, &element.fields, errors));
        check_index_prefix(index, &eq?, eq_span, None, errors).map(|eq| Access::GetEach {
            each,
            index: index.name.clone(),
            eq,
            filters: filters.flatten(),
            first,
        })
    }

    fn update_each(
        &self,
        entries: &mut AccessEntries,
        span: Span,
        errors: &mut Errors,
    ) -> Option<Access> {
        let each = entries.require("each", span, errors);
        let index = entries.require("index", span, errors);
        let eq = entries.require("eq", span, errors);
        let eq_span = eq.as_ref().map_or(span, Entry::span);
        let update = entries.require("update", span, errors);
        let filters = entries.take("filters");
        let first = entries.flag("first", errors);
        let insert_children = entries.take("insert_children");
        let parent_link = entries.take("parent_link");
        let unique = entries.take("unique");

        let (each, element) = self.each(each.as_ref()?, errors)?;
        let index = self.index(index.as_ref()?, errors)?;
        let eq = self.bounds(eq.as_ref()?, &element.fields, errors);
        let update = self.update(update.as_ref()?, &element.fields, errors);
        let filters = filters.and_then(|entry| self.filters(&entry, &element.fields, errors));
        let insert_children = match (insert_children, parent_link) {
            (Some(children), Some(link)) => {
                let from = self.table_fields_list(&children, &element.fields, errors);
                let parent_link = self.parent_link(&link, errors);
                let unique_indexes = match unique {
                    Some(unique) => self.unique_indexes(&unique, errors),
                    None => Vec::new(),
                };
                Some(InsertChildren {
                    from: from?,
                    parent_link: parent_link?,
                    unique_indexes,
                })
            }
            (None, None) => {
                if let Some(unique) = unique {
                    errors.error(unique.span(), "`unique(...)` goes with `insert_children`");
                }
                None
            }
            (Some(entry), None) | (None, Some(entry)) => {
                errors.error(
                    entry.span(),
                    "`insert_children = <field>` and `parent_link = <table field>` go together",
                );
                None
            }
        };
        if insert_children.is_some() && !first {
            errors.error(
                span,
                "`insert_children` needs `first`: children have one parent",
            );
        }
        let eq = check_index_prefix(index, &eq?, eq_span, None, errors)?;
        Some(Access::UpdateEach {
            each,
            index: index.name.clone(),
            eq,
            filters: filters.flatten(),
            update: update?,
            first,
            insert_children,
        })
    }

    fn update_range(
        &self,
        entries: &mut AccessEntries,
        span: Span,
        errors: &mut Errors,
    ) -> Option<Access> {
        let index = entries.require("index", span, errors);
        let eq = entries.take("eq");
        let eq_span = eq.as_ref().map_or(span, Entry::span);
        let lower = entries.take("gte");
        let upper = entries.take("lt");
        let range_span = upper.as_ref().or(lower.as_ref()).map_or(span, Entry::span);
        let limit = entries.require("limit", span, errors);
        let update = entries.require("update", span, errors);
        let add = entries.take("add");
        let then = entries.take("then");

        let index = self.index(index.as_ref()?, errors)?;
        let eq = match &eq {
            Some(eq) => self.bounds(eq, self.args, errors),
            None => Some(Vec::new()),
        };
        let lower = lower.and_then(|entry| self.single_bound(&entry, errors));
        let upper = upper.and_then(|entry| self.single_bound(&entry, errors));
        let limit = self.limit(limit.as_ref()?, errors);
        let update = self.update(update.as_ref()?, self.args, errors);
        let add = match add {
            Some(add) => self.add(&add, errors),
            None => Some(Vec::new()),
        };
        let then = then.and_then(|entry| self.after_update(&entry, errors));
        let returns = RangeReturns::Documents;
        let eq = check_index_prefix(
            index,
            &eq?,
            eq_span,
            Some((&lower, &upper, range_span)),
            errors,
        )?;
        Some(Access::UpdateRange {
            index: index.name.clone(),
            eq,
            lower,
            upper,
            limit: limit?,
            update: update?,
            add: add?,
            returns,
            then,
        })
    }

    fn delete_one(
        &self,
        entries: &mut AccessEntries,
        span: Span,
        errors: &mut Errors,
    ) -> Option<Access> {
        let index = entries.require("index", span, errors);
        let eq = entries.require("eq", span, errors);
        let eq_span = eq.as_ref().map_or(span, Entry::span);
        let index = self.index(index.as_ref()?, errors)?;
        let eq = self.bounds(eq.as_ref()?, self.args, errors)?;
        let eq = check_index_prefix(index, &eq, eq_span, None, errors)?;
        Some(Access::DeleteOne {
            index: index.name.clone(),
            eq,
        })
    }

    /// `each = requests`: an argument holding a list of declared objects.
    fn each(
        &self,
        entry: &Entry,
        errors: &mut Errors,
    ) -> Option<(EachRef, &crate::model::ObjectDef)> {
        let ident = meta::ident_value(entry, errors)?;
        let field = self.arg(&ident, self.args, errors)?;
        let element = match (&field.ty, field.optional) {
            (TypeRef::Array { element }, false) => match element.as_ref() {
                TypeRef::Object { name } => self.component.object(name),
                _ => None,
            },
            _ => None,
        };
        let Some(element) = element else {
            errors.error(
                ident.span(),
                format!("`each` names an argument of type `Vec<SomeObject>` (a list of requests); `{ident}` is not one"),
            );
            return None;
        };
        Some((
            EachRef {
                arg: field.name.clone(),
                element: element.rust_name.clone(),
            },
            element,
        ))
    }

    /// A field of `scope` of type `Vec<Table>`: documents to insert.
    fn table_fields_list(
        &self,
        entry: &Entry,
        scope: &[Field],
        errors: &mut Errors,
    ) -> Option<Name> {
        let ident = meta::ident_value(entry, errors)?;
        let field = self.arg(&ident, scope, errors)?;
        let expected = TypeRef::Array {
            element: Box::new(TypeRef::TableFields {
                table: self.table.rust_name.clone(),
            }),
        };
        if field.ty != expected || field.optional {
            errors.error(
                ident.span(),
                format!(
                    "`{}` takes a field of type `Vec<{}>`",
                    entry.key, self.table.rust_name
                ),
            );
            return None;
        }
        Some(field.name.clone())
    }

    fn unique_indexes(&self, entry: &Entry, errors: &mut Errors) -> Vec<String> {
        let Some(items) = meta::list_value(entry, errors) else {
            return Vec::new();
        };
        let mut unique = Vec::new();
        for item in items {
            match items::literal_of(item) {
                Some(Lit::Str(name)) => match self.table.index(&name.value()) {
                    Some(index) => unique.push(index.name.clone()),
                    None => errors.error(name.span(), self.unknown_index_message(&name.value())),
                },
                _ => errors.error(
                    item.span(),
                    "`unique(...)` lists index names: `unique(\"by_x\", ...)`",
                ),
            }
        }
        unique
    }

    fn index(&self, entry: &Entry, errors: &mut Errors) -> Option<&Index> {
        let (name, span) = meta::string_value(entry, errors)?;
        let index = self.table.index(&name);
        if index.is_none() {
            errors.error(span, self.unknown_index_message(&name));
        }
        index
    }

    fn unknown_index_message(&self, name: &str) -> String {
        format!(
            "table `{}` has no index `{name}`; its indexes are: {}",
            self.table.rust_name,
            self.table
                .indexes
                .iter()
                .map(|index| index.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn arg<'f>(
        &self,
        ident: &syn::Ident,
        scope: &'f [Field],
        errors: &mut Errors,
    ) -> Option<&'f Field> {
        let field = scope.iter().find(|field| *ident == field.name.rust);
        if field.is_none() {
            errors.error(
                ident.span(),
                format!(
                    "no field `{ident}` here; the fields are: {}",
                    scope
                        .iter()
                        .map(|field| field.name.rust.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        field
    }

    fn table_field(&self, ident: &syn::Ident, errors: &mut Errors) -> Option<&Field> {
        let field = self.table.field(&ident.to_string());
        if field.is_none() {
            errors.error(
                ident.span(),
                format!("table `{}` has no field `{ident}`", self.table.rust_name),
            );
        }
        field
    }

    /// `eq(table_field = value, ...)`.
    fn bounds(&self, entry: &Entry, scope: &[Field], errors: &mut Errors) -> Option<Vec<Bound>> {
        let items = meta::list_value(entry, errors)?;
        let mut bounds: Vec<Bound> = Vec::new();
        let mut ok = true;
        for item in items {
            match self.bound(item, scope, errors) {
                Some(bound) if bounds.iter().any(|other| other.field == bound.field) => {
                    errors.error(
                        item.span(),
                        format!("field `{}` is bound twice", bound.field.rust),
                    );
                    ok = false;
                }
                Some(bound) => bounds.push(bound),
                None => ok = false,
            }
        }
        ok.then_some(bounds)
    }

    /// `gte(table_field = value)` / `lt(...)`: exactly one bound.
    fn single_bound(&self, entry: &Entry, errors: &mut Errors) -> Option<Bound> {
        match meta::list_value(entry, errors)? {
            [item] => self.bound(item, self.args, errors),
            _ => {
                errors.error(
                    entry.span(),
                    format!(
                        "`{}(...)` takes one bound: `{}(field = value)`",
                        entry.key, entry.key
                    ),
                );
                None
            }
        }
    }

    fn bound(&self, expr: &Expr, scope: &[Field], errors: &mut Errors) -> Option<Bound> {
        let Expr::Assign(assign) = expr else {
            errors.error(
                expr.span(),
                "a bound is `table_field = value`, where value is a field, a literal or `now`",
            );
            return None;
        };
        let Some(field_ident) = meta::ident_of(&assign.left) else {
            errors.error(assign.left.span(), "expected a table field name");
            return None;
        };
        let field = self.table_field(&field_ident, errors)?;
        let value_expr = assign.right.as_ref();
        let value = match value_expr {
            Expr::Path(_) => {
                let ident = meta::ident_of(value_expr)?;
                if ident == "now" {
                    if !matches!(field.ty, TypeRef::Integer { .. } | TypeRef::Float64) {
                        errors.error(ident.span(), format!("`now` is a time in epoch milliseconds; `{field_ident}` is not a number"));
                        return None;
                    }
                    BoundValue::Now
                } else {
                    let arg = self.arg(&ident, scope, errors)?;
                    if arg.ty != field.ty || arg.optional {
                        errors.error(
                            ident.span(),
                            format!(
                                "`{ident}` cannot bound `{field_ident}`: the types differ (or the argument is optional)"
                            ),
                        );
                        return None;
                    }
                    BoundValue::Arg {
                        name: arg.name.clone(),
                    }
                }
            }
            _ => BoundValue::Literal {
                value: self.literal(value_expr, field, errors)?,
            },
        };
        Some(Bound {
            field: field.name.clone(),
            value,
        })
    }

    fn literal(&self, expr: &Expr, field: &Field, errors: &mut Errors) -> Option<Literal> {
        let (lit, negative) = match expr {
            Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
                (items::literal_of(&unary.expr), true)
            }
            _ => (items::literal_of(expr), false),
        };
        let literal = match (lit, &field.ty) {
            (Some(Lit::Int(int)), TypeRef::Integer { .. } | TypeRef::Float64) => {
                let value: i64 = int.base10_parse().ok()?;
                Literal::Integer(if negative { -value } else { value })
            }
            (Some(Lit::Bool(value)), TypeRef::Bool) if !negative => Literal::Bool(value.value),
            (Some(Lit::Str(text)), TypeRef::String) if !negative => Literal::String(text.value()),
            (Some(Lit::Str(text)), TypeRef::Union { name }) if !negative => {
                let union = self.component.union(name)?;
                if !union
                    .variants
                    .iter()
                    .any(|variant| variant.name.wire == text.value())
                {
                    errors.error(
                        text.span(),
                        format!("`{}` is not a variant of `{name}`", text.value()),
                    );
                    return None;
                }
                Literal::String(text.value())
            }
            _ => {
                errors.error(
                    expr.span(),
                    format!("this value does not fit field `{}`", field.name.rust),
                );
                return None;
            }
        };
        Some(literal)
    }

    fn filters(&self, entry: &Entry, scope: &[Field], errors: &mut Errors) -> Option<Option<Name>> {
        let ident = meta::ident_value(entry, errors)?;
        let field = self.arg(&ident, scope, errors)?;
        if field.ty
            != (TypeRef::Filters {
                table: self.table.rust_name.clone(),
            })
        {
            errors.error(
                ident.span(),
                format!(
                    "`filters` takes a field of type `Option<{}>`",
                    self.table.filters_type
                ),
            );
            return None;
        }
        Some(Some(field.name.clone()))
    }

    fn update(&self, entry: &Entry, scope: &[Field], errors: &mut Errors) -> Option<Name> {
        let ident = meta::ident_value(entry, errors)?;
        let field = self.arg(&ident, scope, errors)?;
        if field.ty
            != (TypeRef::Update {
                table: self.table.rust_name.clone(),
            })
            || field.optional
        {
            errors.error(
                ident.span(),
                format!(
                    "`update` takes a field of type `{}`",
                    self.table.update_type
                ),
            );
            return None;
        }
        Some(field.name.clone())
    }

    fn limit(&self, entry: &Entry, errors: &mut Errors) -> Option<Name> {
        let ident = meta::ident_value(entry, errors)?;
        let field = self.arg(&ident, self.args, errors)?;
        if !matches!(field.ty, TypeRef::Integer { .. }) || field.optional {
            errors.error(ident.span(), "`limit` takes an integer argument");
            return None;
        }
        Some(field.name.clone())
    }

    fn parent_link(&self, entry: &Entry, errors: &mut Errors) -> Option<Name> {
        let ident = meta::ident_value(entry, errors)?;
        let field = self.table_field(&ident, errors)?;
        if field.ty
            != (TypeRef::Id {
                table: self.table.rust_name.clone(),
            })
        {
            errors.error(
                ident.span(),
                format!(
                    "`parent_link` takes a table field of type `Option<Id<{}>>`",
                    self.table.rust_name
                ),
            );
            return None;
        }
        Some(field.name.clone())
    }

    /// `add(target = (argument, document_field))`.
    fn add(&self, entry: &Entry, errors: &mut Errors) -> Option<Vec<AddAssign>> {
        let items = meta::list_value(entry, errors)?;
        let mut adds = Vec::new();
        for item in items {
            let parsed = match item {
                Expr::Assign(assign) => match (meta::ident_of(&assign.left), assign.right.as_ref())
                {
                    (Some(target), Expr::Tuple(tuple)) if tuple.elems.len() == 2 => {
                        let arg = meta::ident_of(&tuple.elems[0]);
                        let document_field = meta::ident_of(&tuple.elems[1]);
                        arg.zip(document_field)
                            .map(|(arg, document_field)| (target, arg, document_field))
                    }
                    _ => None,
                },
                _ => None,
            };
            let Some((target, arg, document_field)) = parsed else {
                errors.error(
                    item.span(),
                    "write `add(target_field = (argument, document_field))`",
                );
                continue;
            };
            let target = self.table_field(&target, errors);
            let arg = self.arg(&arg, self.args, errors);
            let document_field = self.table_field(&document_field, errors);
            let (Some(target), Some(arg), Some(document_field)) = (target, arg, document_field)
            else {
                continue;
            };
            let is_integer = |field: &Field| matches!(field.ty, TypeRef::Integer { .. });
            if !is_integer(target)
                || !is_integer(arg)
                || arg.optional
                || !is_integer(document_field)
                || document_field.optional
            {
                errors.error(item.span(), "`add` sums an integer argument and an integer field that is always present into an integer field");
                continue;
            }
            adds.push(AddAssign {
                target: target.name.clone(),
                arg: arg.name.clone(),
                document_field: document_field.name.clone(),
            });
        }
        Some(adds)
    }

    fn after_update(&self, entry: &Entry, errors: &mut Errors) -> Option<AfterUpdate> {
        let (step, span) = meta::string_value(entry, errors)?;
        if !AFTER_UPDATE_STEPS.contains(&step.as_str()) {
            errors.error(
                span,
                format!(
                    "unknown step `{step}`; expected one of: {}",
                    AFTER_UPDATE_STEPS.join(", ")
                ),
            );
            return None;
        }
        // The step's template reads these fields; the table must have them.
        let mut field = |name: &str| {
            let field = self.table.field(name).map(|field| field.name.clone());
            if field.is_none() {
                errors.error(span, format!("`{step}` needs table field `{name}`"));
            }
            field
        };
        let parent_execution_id = field("parent_execution_id");
        let is_finalize_of_parent = field("is_finalize_of_parent");
        let is_only_child_of_parent = field("is_only_child_of_parent");
        let active_children_count = field("active_children_count");
        let parent_index = self
            .table
            .indexes
            .iter()
            .find(|index| index.fields.len() == 1 && index.fields[0].rust == "execution_id");
        if parent_index.is_none() {
            errors.error(
                span,
                format!("`{step}` needs an index on `execution_id` alone to find the parent"),
            );
        }
        let parent_index = parent_index?;
        Some(AfterUpdate::DecrementParentActiveChildrenCount {
            parent_execution_id: parent_execution_id?,
            is_finalize_of_parent: is_finalize_of_parent?,
            is_only_child_of_parent: is_only_child_of_parent?,
            active_children_count: active_children_count?,
            parent_index: parent_index.name.clone(),
            parent_index_field: parent_index.fields[0].clone(),
        })
    }
}

/// Equality bounds must cover a prefix of the index's fields, and a range must be on the field
/// that follows: otherwise Convex cannot serve the query from the index. Returns the equality
/// bounds in index order.
fn check_index_prefix(
    index: &Index,
    eq: &[Bound],
    eq_span: Span,
    range: Option<(&Option<Bound>, &Option<Bound>, Span)>,
    errors: &mut Errors,
) -> Option<Vec<Bound>> {
    let fields: Vec<&str> = index
        .fields
        .iter()
        .map(|field| field.rust.as_str())
        .collect();
    let shown = fields.join(", ");
    let mut ordered = Vec::new();
    for (position, field) in fields.iter().enumerate().take(eq.len()) {
        match eq.iter().find(|bound| bound.field.rust == *field) {
            Some(bound) => ordered.push(bound.clone()),
            None => {
                let stray = eq
                    .iter()
                    .find(|bound| {
                        fields
                            .iter()
                            .position(|name| *name == bound.field.rust)
                            .is_none_or(|at| at > position)
                    })
                    .map_or_else(String::new, |bound| bound.field.rust.clone());
                errors.push(syn::Error::new(
                    eq_span,
                    format!(
                        "equality on `{stray}` cannot be served by index `{}` (fields: {shown}): equality bounds must cover a prefix of its fields, and `{field}` comes first",
                        index.name
                    ),
                ));
                return None;
            }
        }
    }
    if eq.len() > fields.len() {
        errors.push(syn::Error::new(
            eq_span,
            format!(
                "more equality bounds than index `{}` has fields ({shown})",
                index.name
            ),
        ));
        return None;
    }
    if let Some((lower, upper, range_span)) = range {
        let next = fields.get(eq.len()).copied();
        for bound in [lower, upper].into_iter().flatten() {
            if Some(bound.field.rust.as_str()) != next {
                let after = if eq.is_empty() {
                    "the first field".to_owned()
                } else {
                    format!("after equality on {}", fields[..eq.len()].join(", "))
                };
                errors.push(syn::Error::new(
                    range_span,
                    format!(
                        "a range on `{}` cannot be served by index `{}` (fields: {shown}): {after}, the range must be on `{}`",
                        bound.field.rust,
                        index.name,
                        next.unwrap_or("(no field left)")
                    ),
                ));
                return None;
            }
        }
    }
    Some(ordered)
}
