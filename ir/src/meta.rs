//! The attribute syntax: `#[convex(key, key = value, key(item, item))]`.
//!
//! Every `convex` attribute is read as a list of entries before any meaning is given to it, so
//! that all attributes share one grammar and one set of error messages.

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Lit, Token};

use crate::errors::Errors;

/// One entry of an attribute list.
pub struct Entry {
    pub key: syn::Ident,
    pub value: Value,
}

// Short-lived parse data: boxing `Assign` would only complicate every match on it.
#[allow(clippy::large_enum_variant)]
pub enum Value {
    /// `key`
    Flag,
    /// `key = expr`
    Assign(Expr),
    /// `key(expr, ...)`
    List(Vec<Expr>),
}

impl Entry {
    pub fn span(&self) -> Span {
        self.key.span()
    }

    pub fn name(&self) -> String {
        self.key.to_string()
    }
}

/// The entries of every `#[convex(...)]` attribute in `attrs`, in order.
pub fn convex_entries(attrs: &[Attribute], errors: &mut Errors) -> Vec<Entry> {
    let mut entries = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("convex")) {
        match attr.parse_args_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            Ok(exprs) => {
                for expr in exprs {
                    if let Some(entry) = entry_of(&expr, errors) {
                        entries.push(entry);
                    }
                }
            }
            Err(error) => errors.push(error),
        }
    }
    entries
}

/// Reads `key`, `key = value` or `key(items)` from one expression of a list.
pub fn entry_of(expr: &Expr, errors: &mut Errors) -> Option<Entry> {
    let entry = match expr {
        Expr::Path(path) => path.path.get_ident().map(|key| Entry {
            key: key.clone(),
            value: Value::Flag,
        }),
        Expr::Assign(assign) => ident_of(&assign.left).map(|key| Entry {
            key,
            value: Value::Assign((*assign.right).clone()),
        }),
        Expr::Call(call) => ident_of(&call.func).map(|key| Entry {
            key,
            value: Value::List(call.args.iter().cloned().collect()),
        }),
        _ => None,
    };
    if entry.is_none() {
        errors.error(
            expr.span(),
            "expected `key`, `key = value` or `key(...)` in a `convex` attribute",
        );
    }
    entry
}

pub fn ident_of(expr: &Expr) -> Option<syn::Ident> {
    match expr {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident().cloned(),
        _ => None,
    }
}

/// The string of `key = "value"`.
pub fn string_value(entry: &Entry, errors: &mut Errors) -> Option<(String, Span)> {
    match &entry.value {
        Value::Assign(Expr::Lit(lit)) => match &lit.lit {
            Lit::Str(text) => return Some((text.value(), text.span())),
            other => errors.error(
                other.span(),
                format!(
                    "`{}` takes a string, e.g. `{} = \"...\"`",
                    entry.key, entry.key
                ),
            ),
        },
        Value::Assign(other) => errors.error(
            other.span(),
            format!(
                "`{}` takes a string, e.g. `{} = \"...\"`",
                entry.key, entry.key
            ),
        ),
        _ => errors.error(
            entry.span(),
            format!("`{}` needs a value: `{} = \"...\"`", entry.key, entry.key),
        ),
    }
    None
}

/// The integer of `key = 42` or `key = -42`.
pub fn integer_value(entry: &Entry, errors: &mut Errors) -> Option<(i64, Span)> {
    let example = || {
        format!(
            "`{}` takes an integer, e.g. `{} = 63`",
            entry.key, entry.key
        )
    };
    let Value::Assign(expr) = &entry.value else {
        errors.error(entry.span(), example());
        return None;
    };
    let (lit, negative) = match expr {
        Expr::Unary(unary) if matches!(unary.op, syn::UnOp::Neg(_)) => (&*unary.expr, true),
        other => (other, false),
    };
    let parsed = match lit {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<i64>().ok(),
        _ => None,
    };
    match parsed {
        Some(value) => Some((if negative { -value } else { value }, expr.span())),
        None => {
            errors.error(expr.span(), example());
            None
        }
    }
}

/// The identifier of `key = ident`.
pub fn ident_value(entry: &Entry, errors: &mut Errors) -> Option<syn::Ident> {
    match &entry.value {
        Value::Assign(expr) => {
            let ident = ident_of(expr);
            if ident.is_none() {
                errors.error(
                    expr.span(),
                    format!(
                        "`{}` takes a field name, e.g. `{} = requests`",
                        entry.key, entry.key
                    ),
                );
            }
            ident
        }
        _ => {
            errors.error(
                entry.span(),
                format!(
                    "`{}` needs a value: `{} = field_name`",
                    entry.key, entry.key
                ),
            );
            None
        }
    }
}

/// The items of `key(a, b)`.
pub fn list_value<'a>(entry: &'a Entry, errors: &mut Errors) -> Option<&'a [Expr]> {
    match &entry.value {
        Value::List(items) => Some(items),
        _ => {
            errors.error(
                entry.span(),
                format!("`{}` takes a list: `{}(...)`", entry.key, entry.key),
            );
            None
        }
    }
}

/// Checks that `entry` is a bare flag.
pub fn expect_flag(entry: &Entry, errors: &mut Errors) -> bool {
    let is_flag = matches!(entry.value, Value::Flag);
    if !is_flag {
        errors.error(
            entry.span(),
            format!("`{}` is a flag and takes no value", entry.key),
        );
    }
    is_flag
}

/// Reports a key that is not one of `valid`.
pub fn unknown_key(entry: &Entry, context: &str, valid: &[&str], errors: &mut Errors) {
    errors.error(
        entry.span(),
        format!(
            "unknown key `{}` in {context}; expected one of: {}",
            entry.key,
            valid.join(", ")
        ),
    );
}

/// Reports the second of two entries with the same key.
pub fn check_unique_keys(entries: &[Entry], context: &str, errors: &mut Errors) {
    for (i, entry) in entries.iter().enumerate() {
        if entries[..i].iter().any(|earlier| earlier.key == entry.key) {
            errors.error(
                entry.span(),
                format!("duplicate key `{}` in {context}", entry.key),
            );
        }
    }
}

/// The text of `///` comments.
pub fn doc_of(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(name_value) => match &name_value.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(text),
                    ..
                }) => Some(text.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect();
    lines.join("\n").trim().to_owned()
}
