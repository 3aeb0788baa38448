//! Errors are collected, not returned at the first one, so that a user sees every problem of a
//! declaration in one `cargo check` (serde_derive's `Ctxt` does the same).

use proc_macro2::Span;

use crate::spans::SpanRange;

#[derive(Default)]
pub struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    pub fn error(&mut self, span: Span, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// An error underlining `range` (a whole type, a whole expression).
    pub fn at(&mut self, range: SpanRange, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(range, message));
    }

    pub fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Each error's message, in the order they were reported.
    pub fn messages(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// All errors combined into one (a generic one when there were none).
    pub fn into_error(self) -> syn::Error {
        match self.finish(()) {
            Err(error) => error,
            Ok(()) => syn::Error::new(Span::call_site(), "invalid declaration"),
        }
    }

    /// All errors combined into one, or `Ok(value)` when there were none.
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        let mut errors = self.errors.into_iter();
        match errors.next() {
            None => Ok(value),
            Some(mut first) => {
                for error in errors {
                    first.combine(error);
                }
                Err(first)
            }
        }
    }
}
