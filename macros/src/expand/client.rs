//! The typed client: one method per operation over `ConvexHttpClient::call_operation`.

use durable_execution_storage_convex_ir::{Component, Operation};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::operations::response_name;
use super::{paths, types};

pub fn client(component: &Component) -> TokenStream {
    let runtime = paths::runtime();
    let name = format_ident!("{}", component.client_name);
    let name_string = &component.client_name;
    let app_module = &component.app_module;
    let doc = format!(
        "The typed client of the `{}` public API: one method per operation, authenticated \
         with the shared secret.",
        component.name
    );
    let doc = types::doc_attrs(&doc);
    let new_doc = types::doc_attrs(&format!(
        "A client calling the functions of the `{app_module}` app module."
    ));
    let methods = component.operations.iter().map(operation_method);
    quote! {
        #doc
        #[derive(Clone)]
        pub struct #name {
            http: #runtime::ConvexHttpClient,
            secret: #runtime::AuthSecret,
            module: ::std::string::String,
        }

        // By hand so that the secret never ends up in a log line.
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name_string)
                    .field("http", &self.http)
                    .field("module", &self.module)
                    .finish_non_exhaustive()
            }
        }

        impl #name {
            #new_doc
            pub fn new(http: #runtime::ConvexHttpClient, secret: #runtime::AuthSecret) -> Self {
                Self {
                    http,
                    secret,
                    module: ::std::string::String::from(#app_module),
                }
            }

            /// Calls the functions of another app module (e.g. when mounted under another name).
            pub fn with_module(mut self, module: impl ::core::convert::Into<::std::string::String>) -> Self {
                self.module = module.into();
                self
            }

            /// The app module whose functions this client calls.
            pub fn module(&self) -> &str {
                &self.module
            }

            /// The HTTP client underneath (timeouts, retry policy, stats).
            pub fn http(&self) -> &#runtime::ConvexHttpClient {
                &self.http
            }

            /// This client with its HTTP client replaced by `change(http)` (e.g. another retry
            /// policy or timeouts); the secret and the module stay.
            pub fn map_http(
                mut self,
                change: impl ::core::ops::FnOnce(#runtime::ConvexHttpClient) -> #runtime::ConvexHttpClient,
            ) -> Self {
                self.http = change(self.http);
                self
            }

            /// Calls any operation, by its argument type, with the operation's declared
            /// retry safety (`O::RETRY_SAFETY`).
            pub async fn call<O: #runtime::ConvexOperation>(
                &self,
                args: &O,
            ) -> ::core::result::Result<O::Response, #runtime::ConvexError> {
                let path = ::std::format!("{}:{}", self.module, O::NAME);
                self.http
                    .call_operation(&path, &self.secret, args)
                    .await
            }

            #(#methods)*
        }
    }
}

fn operation_method(operation: &Operation) -> TokenStream {
    let runtime = paths::runtime();
    let doc = types::doc_attrs(&operation.doc);
    let method = format_ident!("{}", operation.method);
    let args = format_ident!("{}", operation.args_type);
    let response = format_ident!("{}", response_name(operation));
    quote! {
        #doc
        pub async fn #method(
            &self,
            args: &#args,
        ) -> ::core::result::Result<#response, #runtime::ConvexError> {
            self.call(args).await
        }
    }
}
