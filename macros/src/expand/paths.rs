//! Absolute paths into the root crate. The generated code lands in the user's crate, which
//! depends on the root crate but maybe not on serde, so serde is reached through the root
//! crate's re-export.

use proc_macro2::TokenStream;
use quote::quote;

/// The runtime module, as a string for serde's `with = "..."` attributes.
pub const RUNTIME: &str = "::durable_execution_storage_convex::runtime";

pub fn runtime() -> TokenStream {
    quote!(::durable_execution_storage_convex::runtime)
}

pub fn serde() -> TokenStream {
    quote!(::durable_execution_storage_convex::__private::serde)
}

/// `#[derive(...)]` with the given std traits plus serde's, and serde's `crate` pointer.
pub fn derives(std_traits: TokenStream) -> TokenStream {
    let serde = serde();
    quote! {
        #[derive(#std_traits, #serde::Serialize, #serde::Deserialize)]
        #[serde(crate = "::durable_execution_storage_convex::__private::serde")]
    }
}
