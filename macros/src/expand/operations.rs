//! Per operation: its argument struct, its response type and its `ConvexOperation` impl; per
//! component: the operation names and the budget the limits were computed against.

use durable_execution_storage_convex_ir::limits::{
    ARGS_BYTES_BUDGET, DOCUMENT_BYTES_MAX, MAX_ARRAY_LEN, QUERY_BUDGET, READ_BYTES_BUDGET,
    RETURN_BYTES_BUDGET, WRITE_BUDGET, WRITE_BYTES_BUDGET,
};
use durable_execution_storage_convex_ir::{
    operation_limits, Component, FunctionKind, Operation, OperationLimits, RetrySafety,
    EXPIRY_GRACE_MS,
};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::items;
use super::paths;
use super::types;

/// `InsertManyArgs` → `InsertManyResponse`.
pub fn response_name(operation: &Operation) -> String {
    let base = operation
        .args_type
        .strip_suffix("Args")
        .unwrap_or(&operation.args_type);
    format!("{base}Response")
}

pub fn operation_items(component: &Component, operation: &Operation) -> TokenStream {
    let args = items::value_struct(
        component,
        &operation.args_type,
        &operation.doc,
        &operation.args,
    );
    let args_type = format_ident!("{}", operation.args_type);
    let response = format_ident!("{}", response_name(operation));
    let response_doc = types::doc_attrs(&format!("What [`{}`] answers.", operation.args_type));
    let returns = types::rust_type(component, &operation.returns);
    let runtime = paths::runtime();
    let name = &operation.name;
    let kind = function_kind(operation.kind);
    let retry = retry_safety(operation.retry);
    let test_only = operation.test_only;
    let limits = limits_literal(&operation_limits(operation));
    quote! {
        #args

        #response_doc
        pub type #response = #returns;

        impl #runtime::ConvexOperation for #args_type {
            const NAME: &'static str = #name;
            const KIND: #runtime::FunctionKind = #kind;
            const RETRY_SAFETY: #runtime::RetrySafety = #retry;
            const TEST_ONLY: bool = #test_only;
            const LIMITS: #runtime::OperationLimits = #limits;
            type Response = #response;
        }
    }
}

fn function_kind(kind: FunctionKind) -> TokenStream {
    let runtime = paths::runtime();
    match kind {
        FunctionKind::Query => quote!(#runtime::FunctionKind::Query),
        FunctionKind::Mutation => quote!(#runtime::FunctionKind::Mutation),
        FunctionKind::Action => quote!(#runtime::FunctionKind::Action),
    }
}

fn retry_safety(safety: RetrySafety) -> TokenStream {
    let runtime = paths::runtime();
    match safety {
        RetrySafety::Idempotent => quote!(#runtime::RetrySafety::Idempotent),
        RetrySafety::VerifyDuplicates => quote!(#runtime::RetrySafety::VerifyDuplicates),
        RetrySafety::OnlyUnsent => quote!(#runtime::RetrySafety::OnlyUnsent),
    }
}

/// The limits as a literal, computed once here rather than at run time.
fn limits_literal(limits: &OperationLimits) -> TokenStream {
    let runtime = paths::runtime();
    let max_items = optional_u32(limits.max_items);
    let max_limit = optional_u32(limits.max_limit);
    let OperationLimits {
        reads_per_item,
        writes_per_item,
        reads_per_child,
        writes_per_child,
        ..
    } = *limits;
    quote! {
        #runtime::OperationLimits {
            max_items: #max_items,
            reads_per_item: #reads_per_item,
            writes_per_item: #writes_per_item,
            reads_per_child: #reads_per_child,
            writes_per_child: #writes_per_child,
            max_limit: #max_limit,
        }
    }
}

fn optional_u32(value: Option<u32>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// Names of the component, of the app module and of every operation, and the call budget.
pub fn component_constants(component: &Component) -> TokenStream {
    let runtime = paths::runtime();
    let name = &component.name;
    let app_module = &component.app_module;
    let names = component.operations.iter().map(|operation| &operation.name);
    quote! {
        /// The Convex component's name.
        pub const COMPONENT_NAME: &str = #name;

        /// The app module exposing the public API (`<module>:<operation>` paths).
        pub const APP_MODULE: &str = #app_module;

        /// Every operation's function name, in declaration order.
        pub const OPERATION_NAMES: &[&str] = &[#(#names),*];

        /// The budgets every operation's `LIMITS` were computed against.
        pub mod limits {
            /// What one call may read, write and carry.
            pub const CALL_BUDGET: #runtime::CallBudget = #runtime::CallBudget {
                reads: #QUERY_BUDGET,
                writes: #WRITE_BUDGET,
                array_len: #MAX_ARRAY_LEN,
                args_bytes: #ARGS_BYTES_BUDGET,
            };

            /// Convex's limit on one document, as Convex measures it (system fields included):
            /// the server refuses to write a larger one (`LIMIT_EXCEEDED`, `documentSize`).
            pub const DOCUMENT_BYTES_MAX: u32 = #DOCUMENT_BYTES_MAX;

            /// Bytes one call may read, write and return on the server (a little under
            /// Convex's 16 MiB each); over them the call is refused with how many of its
            /// leading requests (or documents) fit.
            pub const READ_BYTES_BUDGET: u32 = #READ_BYTES_BUDGET;
            pub const WRITE_BYTES_BUDGET: u32 = #WRITE_BYTES_BUDGET;
            pub const RETURN_BYTES_BUDGET: u32 = #RETURN_BYTES_BUDGET;

            /// An expiry time written earlier than the server's time becomes the server's
            /// time plus this grace, in milliseconds.
            pub const EXPIRY_GRACE_MS: u64 = #EXPIRY_GRACE_MS;
        }
    }
}
