//! Operations: `#[convex(operation(...))]` and the access pattern of `#[convex(access(...))]`.
//!
//! Names are resolved here (a table field, an argument, an index); whether what they name fits
//! where it stands is checked over the IR (`crate::check::access`).

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
use crate::spans::Spans;

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
/// The steps `then(...)` takes after an update.
const AFTER_UPDATE_STEPS: &[&str] = &["decrement_referenced"];
const DECREMENT_REFERENCED_KEYS: &[&str] = &["counter", "via", "index", "unless", "reset_if"];

pub fn resolve_operation(
    declared: &DeclaredOperation<'_>,
    component: &Component,
    type_names: &TypeNames,
    spans: &mut Spans,
    errors: &mut Errors,
) -> Option<Operation> {
    let item = declared.item;
    let args_type = item.ident.to_string();
    let path = format!("{args_type}/#operation");
    spans.set(path.clone(), declared.operation.span());
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
        let value = match entry.name().as_str() {
            "name" => {
                name = meta::string_value(entry, errors);
                name.as_ref().map(|(_, span)| *span)
            }
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
                });
                kind.map(|(_, span)| span)
            }
            "returns" => {
                returns = meta::string_value(entry, errors);
                returns.as_ref().map(|(_, span)| *span)
            }
            "test_only" => {
                test_only = meta::expect_flag(entry, errors);
                None
            }
            "method" => {
                method = meta::string_value(entry, errors);
                method.as_ref().map(|(_, span)| *span)
            }
            "table" => {
                table_name = meta::string_value(entry, errors);
                None
            }
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
                });
                retry.map(|(_, span)| span)
            }
            _ => {
                meta::unknown_key(entry, "`operation(...)`", OPERATION_KEYS, errors);
                None
            }
        };
        if let Some(span) = value {
            spans.set(format!("{path}/{}", entry.name()), span);
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

    let args = items::resolve_fields(item, type_names, FieldOwner::Operation, spans, errors);
    let table = resolve_table(component, table_name, operation_span, errors)?;

    let (name, _) = name?;
    let method = method.map_or_else(|| names::snake_case(&name), |(method, _)| method);
    let (kind, _) = kind?;
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
        path: format!("{args_type}/#access"),
    };
    let mut access = scope.resolve_access(access_entry, spans, errors)?;
    if let Access::UpdateRange {
        returns: range_returns,
        ..
    } = &mut access
    {
        // Whether `returns` is one of the two a range update answers is a check.
        if let TypeRef::Integer { .. } = returns {
            *range_returns = RangeReturns::Count;
        }
    }

    Some(Operation {
        name,
        method,
        args_type,
        doc: meta::doc_of(&item.attrs),
        kind,
        args,
        returns,
        test_only,
        retry: retry.map_or_else(|| RetrySafety::default_for(kind), |(safety, _)| safety),
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

/// What an access pattern may refer to.
struct Scope<'a> {
    component: &'a Component,
    table: &'a Table,
    args: &'a [Field],
    /// `<Args>/#access`, where the spans of the pattern's entries go.
    path: String,
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

/// The parser's state while reading one `access(...)`.
struct Cx<'s> {
    spans: &'s mut Spans,
    errors: &'s mut Errors,
}

impl Scope<'_> {
    fn resolve_access(
        &self,
        entry: &Entry,
        spans: &mut Spans,
        errors: &mut Errors,
    ) -> Option<Access> {
        let items = meta::list_value(entry, errors)?;
        let mut entries: Vec<Entry> = items
            .iter()
            .filter_map(|expr| meta::entry_of(expr, errors))
            .collect();
        let span = entry.span();
        spans.set(self.path.clone(), span);
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
        for entry in &entries {
            spans.set(format!("{}/{}", self.path, entry.name()), entry.span());
        }
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
        let cx = &mut Cx { spans, errors };
        let access = match pattern.as_str() {
            "insert" => self.insert(&mut entries, span, cx),
            "get_each" => self.get_each(&mut entries, span, cx),
            "update_each" => self.update_each(&mut entries, span, cx),
            "update_range" => self.update_range(&mut entries, span, cx),
            "delete_one" => self.delete_one(&mut entries, span, cx),
            _ => Some(Access::DeleteAll),
        };
        entries.finish(cx.errors);
        access
    }

    fn insert(&self, entries: &mut AccessEntries, span: Span, cx: &mut Cx) -> Option<Access> {
        let each = entries.require("each", span, cx.errors);
        let unique = entries.take("unique");
        let each = self.named_field(each.as_ref()?, self.args, cx);
        let unique_indexes = match unique {
            Some(unique) => self.unique_indexes(&unique, cx.errors),
            None => Vec::new(),
        };
        Some(Access::Insert {
            each: each?,
            unique_indexes,
        })
    }

    fn get_each(&self, entries: &mut AccessEntries, span: Span, cx: &mut Cx) -> Option<Access> {
        let each = entries.require("each", span, cx.errors);
        let index = entries.require("index", span, cx.errors);
        let eq = entries.require("eq", span, cx.errors);
        let filters = entries.take("filters");
        let first = entries.flag("first", cx.errors);
        let (each, element) = self.each(each.as_ref()?, cx)?;
        let index = self.index(index.as_ref()?, &self.index_value_path(), cx);
        let eq = self.bounds(eq.as_ref()?, &element.fields, cx);
        let filters = match filters {
            Some(entry) => Some(self.named_field(&entry, &element.fields, cx)?),
            None => None,
        };
        Some(Access::GetEach {
            each,
            eq: in_index_order(eq?, index?),
            index: index?.name.clone(),
            filters,
            first,
        })
    }

    fn update_each(&self, entries: &mut AccessEntries, span: Span, cx: &mut Cx) -> Option<Access> {
        let each = entries.require("each", span, cx.errors);
        let index = entries.require("index", span, cx.errors);
        let eq = entries.require("eq", span, cx.errors);
        let update = entries.require("update", span, cx.errors);
        let filters = entries.take("filters");
        let first = entries.flag("first", cx.errors);
        let insert_children = entries.take("insert_children");
        let parent_link = entries.take("parent_link");
        let unique = entries.take("unique");

        let (each, element) = self.each(each.as_ref()?, cx)?;
        let index = self.index(index.as_ref()?, &self.index_value_path(), cx);
        let eq = self.bounds(eq.as_ref()?, &element.fields, cx);
        let update = self.named_field(update.as_ref()?, &element.fields, cx);
        let filters = filters.map(|entry| self.named_field(&entry, &element.fields, cx));
        let insert_children = match (insert_children, parent_link) {
            (Some(children), Some(link)) => {
                let from = self.named_field(&children, &element.fields, cx);
                let parent_link = self.table_field_value(&link, cx);
                let unique_indexes = match unique {
                    Some(unique) => self.unique_indexes(&unique, cx.errors),
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
                    cx.errors
                        .error(unique.span(), "`unique(...)` goes with `insert_children`");
                }
                None
            }
            (Some(entry), None) | (None, Some(entry)) => {
                cx.errors.error(
                    entry.span(),
                    "`insert_children = <field>` and `parent_link = <table field>` go together",
                );
                None
            }
        };
        Some(Access::UpdateEach {
            each,
            eq: in_index_order(eq?, index?),
            index: index?.name.clone(),
            filters: filters.flatten(),
            update: update?,
            first,
            insert_children,
        })
    }

    fn update_range(&self, entries: &mut AccessEntries, span: Span, cx: &mut Cx) -> Option<Access> {
        let index = entries.require("index", span, cx.errors);
        let eq = entries.take("eq");
        let lower = entries.take("gte");
        let upper = entries.take("lt");
        let limit = entries.require("limit", span, cx.errors);
        let update = entries.require("update", span, cx.errors);
        let add = entries.take("add");
        let then = entries.take("then");

        let index = self.index(index.as_ref()?, &self.index_value_path(), cx);
        let eq = match &eq {
            Some(eq) => self.bounds(eq, self.args, cx),
            None => Some(Vec::new()),
        };
        let lower = lower.map(|entry| self.single_bound(&entry, cx));
        let upper = upper.map(|entry| self.single_bound(&entry, cx));
        let limit = self.named_field(limit.as_ref()?, self.args, cx);
        let update = self.named_field(update.as_ref()?, self.args, cx);
        let add = match add {
            Some(add) => self.add(&add, cx),
            None => Some(Vec::new()),
        };
        let then = match then {
            Some(entry) => Some(self.after_update(&entry, cx)?),
            None => None,
        };
        Some(Access::UpdateRange {
            eq: in_index_order(eq?, index?),
            index: index?.name.clone(),
            lower: match lower {
                Some(bound) => Some(bound?),
                None => None,
            },
            upper: match upper {
                Some(bound) => Some(bound?),
                None => None,
            },
            limit: limit?,
            update: update?,
            add: add?,
            // Set from the operation's `returns`.
            returns: RangeReturns::Documents,
            then,
        })
    }

    fn delete_one(&self, entries: &mut AccessEntries, span: Span, cx: &mut Cx) -> Option<Access> {
        let index = entries.require("index", span, cx.errors);
        let eq = entries.require("eq", span, cx.errors);
        let index = self.index(index.as_ref()?, &self.index_value_path(), cx);
        let eq = self.bounds(eq.as_ref()?, self.args, cx);
        Some(Access::DeleteOne {
            eq: in_index_order(eq?, index?),
            index: index?.name.clone(),
        })
    }

    /// `each = requests`: an argument holding a list of declared objects, whose fields the
    /// other entries name.
    fn each(&self, entry: &Entry, cx: &mut Cx) -> Option<(EachRef, &crate::model::ObjectDef)> {
        let ident = meta::ident_value(entry, cx.errors)?;
        cx.spans
            .set(format!("{}/each/value", self.path), ident.span());
        let field = self.arg(&ident, self.args, cx.errors)?;
        let element = match (&field.ty, field.optional) {
            (TypeRef::Array { element }, false) => match element.as_ref() {
                TypeRef::Object { name } => self.component.object(name),
                _ => None,
            },
            _ => None,
        };
        let Some(element) = element else {
            cx.errors.error(
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

    /// `key = field`, a field of `scope`; records `/<key>/value`.
    fn named_field(&self, entry: &Entry, scope: &[Field], cx: &mut Cx) -> Option<Name> {
        let ident = meta::ident_value(entry, cx.errors)?;
        cx.spans.set(
            format!("{}/{}/value", self.path, entry.name()),
            ident.span(),
        );
        let field = self.arg(&ident, scope, cx.errors)?;
        Some(field.name.clone())
    }

    /// `key = table_field`; records `/<key>/value`.
    fn table_field_value(&self, entry: &Entry, cx: &mut Cx) -> Option<Name> {
        let ident = meta::ident_value(entry, cx.errors)?;
        cx.spans.set(
            format!("{}/{}/value", self.path, entry.name()),
            ident.span(),
        );
        let field = self.table_field(&ident, cx.errors)?;
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

    /// `index = "name"`; records `value_path`.
    fn index(&self, entry: &Entry, value_path: &str, cx: &mut Cx) -> Option<&Index> {
        let (name, span) = meta::string_value(entry, cx.errors)?;
        cx.spans.set(value_path, span);
        let index = self.table.index(&name);
        if index.is_none() {
            cx.errors.error(span, self.unknown_index_message(&name));
        }
        index
    }

    fn index_value_path(&self) -> String {
        format!("{}/index/value", self.path)
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

    /// `eq(table_field = value, ...)`, spans under `/eq/<field>`.
    fn bounds(&self, entry: &Entry, scope: &[Field], cx: &mut Cx) -> Option<Vec<Bound>> {
        let items = meta::list_value(entry, cx.errors)?;
        let path = format!("{}/{}", self.path, entry.name());
        let mut bounds: Vec<Bound> = Vec::new();
        let mut ok = true;
        for item in items {
            match self.bound(item, scope, &path, cx) {
                Some(bound) if bounds.iter().any(|other| other.field == bound.field) => {
                    cx.errors.error(
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
    fn single_bound(&self, entry: &Entry, cx: &mut Cx) -> Option<Bound> {
        match meta::list_value(entry, cx.errors)? {
            [item] => {
                let path = format!("{}/{}", self.path, entry.name());
                self.bound(item, self.args, &path, cx)
            }
            _ => {
                cx.errors.error(
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

    /// `table_field = value`: records `<path>/<field>` and `<path>/<field>/value`.
    fn bound(&self, expr: &Expr, scope: &[Field], path: &str, cx: &mut Cx) -> Option<Bound> {
        let Expr::Assign(assign) = expr else {
            cx.errors.error(
                expr.span(),
                "a bound is `table_field = value`, where value is a field, a literal or `now`",
            );
            return None;
        };
        let Some(field_ident) = meta::ident_of(&assign.left) else {
            cx.errors
                .error(assign.left.span(), "expected a table field name");
            return None;
        };
        let field = self.table_field(&field_ident, cx.errors)?;
        let path = format!("{path}/{field_ident}");
        cx.spans.set(path.clone(), field_ident.span());
        let value_expr = assign.right.as_ref();
        cx.spans.set(format!("{path}/value"), value_expr.span());
        let value = match value_expr {
            Expr::Path(_) => {
                let Some(ident) = meta::ident_of(value_expr) else {
                    cx.errors.error(
                        value_expr.span(),
                        "a bound's value is a field name, a literal or `now`",
                    );
                    return None;
                };
                if ident == "now" {
                    BoundValue::Now
                } else {
                    let arg = self.arg(&ident, scope, cx.errors)?;
                    BoundValue::Arg {
                        name: arg.name.clone(),
                    }
                }
            }
            _ => BoundValue::Literal {
                value: literal(value_expr, cx.errors)?,
            },
        };
        Some(Bound {
            field: field.name.clone(),
            value,
        })
    }

    /// `add(target = (argument, document_field))`, spans at `/add/<i>`.
    fn add(&self, entry: &Entry, cx: &mut Cx) -> Option<Vec<AddAssign>> {
        let items = meta::list_value(entry, cx.errors)?;
        let mut adds = Vec::new();
        let mut ok = true;
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
                cx.errors.error(
                    item.span(),
                    "write `add(target_field = (argument, document_field))`",
                );
                ok = false;
                continue;
            };
            let target = self.table_field(&target, cx.errors);
            let arg = self.arg(&arg, self.args, cx.errors);
            let document_field = self.table_field(&document_field, cx.errors);
            let (Some(target), Some(arg), Some(document_field)) = (target, arg, document_field)
            else {
                ok = false;
                continue;
            };
            cx.spans
                .set(format!("{}/add/{}", self.path, adds.len()), item.span());
            adds.push(AddAssign {
                target: target.name.clone(),
                arg: arg.name.clone(),
                document_field: document_field.name.clone(),
            });
        }
        ok.then_some(adds)
    }

    /// `then(step(key = value, ...))`, spans at `/then/<key>` and `/then/<key>/value`.
    fn after_update(&self, entry: &Entry, cx: &mut Cx) -> Option<AfterUpdate> {
        let example = "write `then(decrement_referenced(counter = .., via = .., index = \"..\"))`";
        let step = match meta::list_value(entry, cx.errors)? {
            [step] => meta::entry_of(step, cx.errors)?,
            _ => {
                cx.errors.error(entry.span(), example);
                return None;
            }
        };
        let Value::List(items) = &step.value else {
            cx.errors.error(step.span(), example);
            return None;
        };
        if !AFTER_UPDATE_STEPS.contains(&step.name().as_str()) {
            cx.errors.error(
                step.span(),
                format!(
                    "unknown step `{}`; expected one of: {}",
                    step.key,
                    AFTER_UPDATE_STEPS.join(", ")
                ),
            );
            return None;
        }
        let entries: Vec<Entry> = items
            .iter()
            .filter_map(|expr| meta::entry_of(expr, cx.errors))
            .collect();
        let context = format!("`{}(...)`", step.key);
        meta::check_unique_keys(&entries, &context, cx.errors);
        let path = format!("{}/then", self.path);
        let mut keys = AccessEntries {
            entries,
            pattern: String::new(),
            valid: DECREMENT_REFERENCED_KEYS,
        };
        let mut field = |key: &str, required: bool, cx: &mut Cx| -> Option<Option<Name>> {
            let Some(entry) = keys.take(key) else {
                if required {
                    cx.errors.error(
                        step.span(),
                        format!("`{}(...)` needs `{key} = <table field>`", step.key),
                    );
                    return None;
                }
                return Some(None);
            };
            cx.spans.set(format!("{path}/{key}"), entry.span());
            let ident = meta::ident_value(&entry, cx.errors)?;
            cx.spans.set(format!("{path}/{key}/value"), ident.span());
            Some(Some(self.table_field(&ident, cx.errors)?.name.clone()))
        };
        let counter = field("counter", true, cx);
        let via = field("via", true, cx);
        let unless = field("unless", false, cx);
        let reset_if = field("reset_if", false, cx);
        let index = match keys.take("index") {
            Some(entry) => {
                cx.spans.set(format!("{path}/index"), entry.span());
                self.index(&entry, &format!("{path}/index/value"), cx)
            }
            None => {
                cx.errors.error(
                    step.span(),
                    format!("`{}(...)` needs `index = \"<index name>\"`", step.key),
                );
                None
            }
        };
        for entry in &keys.entries {
            meta::unknown_key(entry, &context, DECREMENT_REFERENCED_KEYS, cx.errors);
        }
        let index = index?;
        // An index without fields is refused by its own check.
        let index_field = index.fields.first()?.clone();
        Some(AfterUpdate::DecrementReferenced {
            via: via??,
            index: index.name.clone(),
            index_field,
            counter: counter??,
            unless: unless?,
            reset_if: reset_if?,
        })
    }
}

/// Equality bounds in the order of the index's fields (those it does not have last), the order
/// the index query states them in; whether they fit the index is a check.
fn in_index_order(mut eq: Vec<Bound>, index: &Index) -> Vec<Bound> {
    eq.sort_by_key(|bound| {
        index
            .fields
            .iter()
            .position(|field| *field == bound.field)
            .unwrap_or(usize::MAX)
    });
    eq
}

/// An integer (optionally negative), boolean or string literal; whether it fits its field is a
/// check.
fn literal(expr: &Expr, errors: &mut Errors) -> Option<Literal> {
    let (lit, negative) = match expr {
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            (items::literal_of(&unary.expr), true)
        }
        _ => (items::literal_of(expr), false),
    };
    let literal = match lit {
        Some(Lit::Int(int)) => match int.base10_parse::<i64>() {
            Ok(value) => Literal::Integer(if negative { -value } else { value }),
            Err(_) => {
                errors.error(expr.span(), "this integer does not fit an `i64`");
                return None;
            }
        },
        Some(Lit::Bool(value)) if !negative => Literal::Bool(value.value),
        Some(Lit::Str(text)) if !negative => Literal::String(text.value()),
        _ => {
            errors.error(
                expr.span(),
                "a bound's value is a field name, `now`, or an integer, boolean or string literal",
            );
            return None;
        }
    };
    Some(literal)
}
