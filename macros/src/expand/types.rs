//! Rust types and serde attributes of IR types and fields.

use durable_execution_storage_convex_ir::{Component, Field, ServerTime, TypeRef};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::paths;

/// `#[doc = "..."]` per line, with the leading space rustdoc expects from `///`.
pub fn doc_attrs(doc: &str) -> TokenStream {
    if doc.is_empty() {
        return TokenStream::new();
    }
    let lines = doc.lines().map(|line| {
        let line = if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        };
        quote!(#[doc = #line])
    });
    quote!(#(#lines)*)
}

/// The Rust type of an IR type, as seen from inside the generated module.
pub fn rust_type(component: &Component, ty: &TypeRef) -> TokenStream {
    let runtime = paths::runtime();
    match ty {
        TypeRef::Null => quote!(()),
        TypeRef::Bool => quote!(bool),
        TypeRef::String => quote!(::std::string::String),
        TypeRef::Float64 => quote!(f64),
        TypeRef::Integer { rust } => {
            let ident = format_ident!("{}", rust.rust_name());
            quote!(#ident)
        }
        TypeRef::Id { table } => {
            let table = format_ident!("{}", table);
            quote!(#runtime::Id<#table>)
        }
        TypeRef::Document { table } => {
            let table = format_ident!("{}", table);
            quote!(#runtime::Doc<#table>)
        }
        TypeRef::Object { name } | TypeRef::Union { name } => ident(name),
        TypeRef::TableFields { table } => ident(table),
        TypeRef::Update { table } => table_helper(component, table, |t| &t.update_type),
        TypeRef::Unset { table } => table_helper(component, table, |t| &t.unset_type),
        TypeRef::Filters { table } => table_helper(component, table, |t| &t.filters_type),
        TypeRef::Nullable { inner } => {
            let inner = rust_type(component, inner);
            quote!(::core::option::Option<#inner>)
        }
        TypeRef::Array { element } => {
            let element = rust_type(component, element);
            quote!(::std::vec::Vec<#element>)
        }
    }
}

fn ident(name: &str) -> TokenStream {
    let ident = format_ident!("{}", name);
    quote!(#ident)
}

/// One of the types generated for a table (update, unset, filters), by the table's Rust name.
fn table_helper(
    component: &Component,
    table: &str,
    name_of: impl Fn(&durable_execution_storage_convex_ir::Table) -> &String,
) -> TokenStream {
    // The parser only produces these references for declared tables.
    let table = component
        .table(table)
        .expect("the IR refers to a declared table");
    ident(name_of(table))
}

/// Whether `Default` can be derived for a struct holding a required field of this type.
pub fn has_default(ty: &TypeRef) -> bool {
    match ty {
        TypeRef::Null
        | TypeRef::Bool
        | TypeRef::String
        | TypeRef::Float64
        | TypeRef::Integer { .. }
        | TypeRef::Nullable { .. }
        | TypeRef::Array { .. }
        | TypeRef::Update { .. }
        | TypeRef::Unset { .. }
        | TypeRef::Filters { .. } => true,
        TypeRef::Id { .. }
        | TypeRef::Document { .. }
        | TypeRef::Object { .. }
        | TypeRef::Union { .. }
        | TypeRef::TableFields { .. } => false,
    }
}

/// Whether a field is present on the wire only when set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
}

/// A struct field: docs, wire name, serde attributes (integers through the checked wire
/// format, optional fields skipped when absent because Convex's `v.optional` refuses `null`).
pub fn struct_field(
    component: &Component,
    field: &Field,
    ty: &TypeRef,
    presence: Presence,
) -> TokenStream {
    let doc = doc_attrs(&field_doc(field));
    let name = format_ident!("{}", field.name.rust);
    let wire = &field.name.wire;
    let rust = rust_type(component, ty);
    let is_integer = matches!(ty, TypeRef::Integer { .. });
    match presence {
        Presence::Required => {
            let with = is_integer.then(|| {
                let path = format!("{}::wire::integer", paths::RUNTIME);
                quote!(#[serde(with = #path)])
            });
            quote! {
                #doc
                #[serde(rename = #wire)]
                #with
                pub #name: #rust,
            }
        }
        Presence::Optional => {
            let with = is_integer.then(|| {
                let path = format!("{}::wire::optional_integer", paths::RUNTIME);
                quote!(#[serde(with = #path)])
            });
            quote! {
                #doc
                #[serde(rename = #wire, default, skip_serializing_if = "::core::option::Option::is_none")]
                #with
                pub #name: ::core::option::Option<#rust>,
            }
        }
    }
}

/// A field's doc comment, with what the server does to its value (server time, bounds).
fn field_doc(field: &Field) -> String {
    let mut notes = Vec::new();
    if let Some(rule) = field.server_time {
        notes.push(match rule {
            ServerTime::Now => {
                "Server time: the server uses its own time (`now`), whatever is sent.".to_owned()
            }
            ServerTime::AtLeastNow => {
                "Server time: raised to the server's time when earlier.".to_owned()
            }
            ServerTime::Expiry => "Server time: when earlier than the server's time, the \
                                   server's time plus `limits::EXPIRY_GRACE_MS`."
                .to_owned(),
            ServerTime::AtMostNow => {
                "Server time: lowered to the server's time when later.".to_owned()
            }
        });
    }
    match (field.min, field.max) {
        (Some(min), Some(max)) => {
            notes.push(format!("The server refuses values outside {min}..={max}."))
        }
        (Some(min), None) => notes.push(format!("The server refuses values below {min}.")),
        (None, Some(max)) => notes.push(format!("The server refuses values above {max}.")),
        (None, None) => {}
    }
    let mut doc = field.doc.clone();
    for note in notes {
        if !doc.is_empty() {
            doc.push_str("\n\n");
        }
        doc.push_str(&note);
    }
    doc
}

/// A declared field as declared: `Option<T>` when optional.
pub fn declared_field(component: &Component, field: &Field) -> TokenStream {
    let presence = if field.optional {
        Presence::Optional
    } else {
        Presence::Required
    };
    struct_field(component, field, &field.ty, presence)
}
