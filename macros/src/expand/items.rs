//! Value types: unions, objects, the table struct and the types derived from its fields'
//! `update` and `filter` attributes.

use durable_execution_storage_convex_ir::{
    Component, Field, ObjectDef, Table, UnionDef, UpdateMode,
};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::paths;
use super::types::{self, Presence};

/// A unit-only enum travelling as its variants' wire strings.
pub fn union_enum(union: &UnionDef) -> TokenStream {
    let name = format_ident!("{}", union.rust_name);
    let doc = types::doc_attrs(&union.doc);
    let derives = paths::derives(quote!(
        Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord
    ));
    let idents: Vec<_> = union
        .variants
        .iter()
        .map(|variant| format_ident!("{}", variant.name.rust))
        .collect();
    let wires: Vec<_> = union
        .variants
        .iter()
        .map(|variant| &variant.name.wire)
        .collect();
    let variants = union.variants.iter().zip(&idents).map(|(variant, ident)| {
        let doc = types::doc_attrs(&variant.doc);
        let wire = &variant.name.wire;
        quote! {
            #doc
            #[serde(rename = #wire)]
            #ident,
        }
    });
    quote! {
        #doc
        #derives
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[#(Self::#idents),*];

            /// The string this variant travels as.
            pub fn as_str(self) -> &'static str {
                match self {
                    #(Self::#idents => #wires,)*
                }
            }
        }
    }
}

/// A struct travelling as a Convex object.
pub fn object_struct(component: &Component, object: &ObjectDef) -> TokenStream {
    value_struct(component, &object.rust_name, &object.doc, &object.fields)
}

/// A plain data struct with the declared fields. No `deny_unknown_fields`: reads stay
/// forward compatible with fields added on the server; Convex's validators guard the writes.
pub fn value_struct(component: &Component, name: &str, doc: &str, fields: &[Field]) -> TokenStream {
    let name = format_ident!("{}", name);
    let doc = types::doc_attrs(doc);
    let derives = paths::derives(quote!(Debug, Clone, PartialEq));
    let fields = fields
        .iter()
        .map(|field| types::declared_field(component, field));
    quote! {
        #doc
        #derives
        pub struct #name {
            #(#fields)*
        }
    }
}

/// The table struct, its update request, the update's `unset` object and its by-id filters.
pub fn table_types(component: &Component, table: &Table) -> TokenStream {
    let row = value_struct(component, &table.rust_name, &table.doc, &table.fields);
    let update = update_struct(component, table);
    let unset = unset_struct(table);
    let filters = filters_struct(component, table);
    quote! {
        #row
        #update
        #unset
        #filters
    }
}

fn update_struct(component: &Component, table: &Table) -> TokenStream {
    let name = format_ident!("{}", table.update_type);
    let unset = format_ident!("{}", table.unset_type);
    let doc = format!(
        "A patch of a [`{}`]: the fields to set, and in `unset` the fields to remove.",
        table.rust_name
    );
    let updatable: Vec<&Field> = table
        .fields
        .iter()
        .filter(|field| field.update != UpdateMode::Immutable)
        .collect();
    // `Default` only when every field has one: a required field of a union type has none.
    let can_default = updatable
        .iter()
        .all(|field| field.update != UpdateMode::Required || types::has_default(&field.ty));
    let default = can_default.then(|| quote!(, Default));
    let derives = paths::derives(quote!(Debug, Clone, PartialEq #default));
    let fields = updatable.iter().map(|field| {
        let presence = match field.update {
            UpdateMode::Required => Presence::Required,
            _ => Presence::Optional,
        };
        types::struct_field(component, field, &field.ty, presence)
    });
    let doc = types::doc_attrs(&doc);
    quote! {
        #doc
        #derives
        pub struct #name {
            #(#fields)*
            /// The fields to remove from the document.
            #[serde(default, skip_serializing_if = "::core::option::Option::is_none")]
            pub unset: ::core::option::Option<#unset>,
        }
    }
}

fn unset_struct(table: &Table) -> TokenStream {
    let name = format_ident!("{}", table.unset_type);
    let doc = format!(
        "The optional fields of a [`{}`] an update may remove: `true` removes the field.",
        table.rust_name
    );
    let derives = paths::derives(quote!(Debug, Clone, Copy, PartialEq, Eq, Default));
    let fields = table
        .fields
        .iter()
        .filter(|field| field.update == UpdateMode::Unsettable)
        .map(|field| {
            let ident = format_ident!("{}", field.name.rust);
            let wire = &field.name.wire;
            // On the wire these are optional booleans; `false` is the same as absent.
            quote! {
                #[serde(rename = #wire, default, skip_serializing_if = "<&bool as ::core::ops::Not>::not")]
                pub #ident: bool,
            }
        });
    let doc = types::doc_attrs(&doc);
    quote! {
        #doc
        #derives
        pub struct #name {
            #(#fields)*
        }
    }
}

fn filters_struct(component: &Component, table: &Table) -> TokenStream {
    let name = format_ident!("{}", table.filters_type);
    let doc = format!(
        "Conditions on a [`{}`] found by id: it is only read or patched when every set field \
         matches.",
        table.rust_name
    );
    let derives = paths::derives(quote!(Debug, Clone, PartialEq, Default));
    let fields = table
        .fields
        .iter()
        .filter(|field| field.filter)
        .map(|field| types::struct_field(component, field, &field.ty, Presence::Optional));
    let doc = types::doc_attrs(&doc);
    quote! {
        #doc
        #derives
        pub struct #name {
            #(#fields)*
        }
    }
}
