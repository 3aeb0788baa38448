//! From the declaration to Rust code. The declaration is parsed and checked by the IR crate;
//! everything below generates from the IR only, so the macro and the TypeScript generator can
//! never disagree about what the declaration means.

mod client;
mod items;
mod operations;
mod paths;
mod types;

#[cfg(test)]
mod tests;

use durable_execution_storage_convex_ir::{parse_component, Component};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Expands `#[convex_component(<attr>)] <item>`; a declaration with problems expands to its
/// compile errors only (all of them), so no half-generated API causes follow-up errors.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let module = match syn::parse2::<syn::ItemMod>(item) {
        Ok(module) => module,
        Err(error) => return error.to_compile_error(),
    };
    match parse_component(attr, &module) {
        Ok(component) => expand_component(&component),
        Err(error) => error.to_compile_error(),
    }
}

/// The generated module: value types, table helper types, operations, limits and the client.
pub fn expand_component(component: &Component) -> TokenStream {
    let module = format_ident!("{}", component.rust_module);
    let doc = types::doc_attrs(&component.doc);
    let unions = component.unions.iter().map(items::union_enum);
    let objects = component
        .objects
        .iter()
        .map(|object| items::object_struct(component, object));
    let tables = component
        .tables
        .iter()
        .map(|table| items::table_types(component, table));
    let operations = component
        .operations
        .iter()
        .map(|operation| operations::operation_items(component, operation));
    let constants = operations::component_constants(component);
    let client = client::client(component);
    quote! {
        #doc
        pub mod #module {
            #(#unions)*
            #(#objects)*
            #(#tables)*
            #(#operations)*
            #constants
            #client
        }
    }
}
