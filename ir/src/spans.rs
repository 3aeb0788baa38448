//! Where each part of the IR was declared, kept beside the IR rather than in it.
//!
//! The parser records a span for every item, field, attribute key and value it reads, under a
//! path; the checks ask for the span of the part at fault by the same path. The IR itself stays
//! plain data for the generators.
//!
//! Paths are `/`-separated segments:
//!
//! | path | span |
//! |---|---|
//! | `#component/<key>` | the value of `#[convex_component(<key> = ...)]` |
//! | `<Item>` | a struct's or an enum's name |
//! | `<Item>/<field>` | a field's (or a variant's) name |
//! | `<Item>/<field>/type` | a field's whole type |
//! | `<Item>/<field>/<key>` | a field attribute: the key, or the value for `rename`, `server_time`, `min`, `max` |
//! | `<Table>/#table` | the table name string |
//! | `<Table>/#index/<i>` | the `index` key of the table's `i`-th index; `/name`, `/fields`, `/fields/<j>` below it |
//! | `<Args>/#operation` | the `operation` key; `/<key>` its values (`name`, `kind`, `returns`, ...) |
//! | `<Args>/#access` | the `access` key; `/<key>` each entry's key, `/<key>/value` its value |
//! | `<Args>/#access/<eq\|gte\|lt>/<field>` | one bound; `/value` its value |
//! | `<Args>/#access/add/<i>` | one `add` item |
//! | `<Args>/#access/then/<key>` | a key of the `then` step; `/value` its value |
//!
//! A path with no span of its own falls back to its closest recorded ancestor, then to the
//! module, so a check always has somewhere to point.

use std::collections::HashMap;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, TokenStreamExt};

/// A span from one token to another (on stable, a [`Span`] cannot be joined): the range a
/// compiler error underlines, as `syn::Error::new_spanned` computes it.
#[derive(Debug, Clone, Copy)]
pub struct SpanRange {
    start: Span,
    end: Span,
}

impl SpanRange {
    /// From the first to the last token of `tokens`.
    pub fn of(tokens: &dyn ToTokens) -> Self {
        let mut stream = tokens.to_token_stream().into_iter();
        let start = stream
            .next()
            .map_or_else(Span::call_site, |token| token.span());
        let end = stream.last().map_or(start, |token| token.span());
        SpanRange { start, end }
    }
}

impl From<Span> for SpanRange {
    fn from(span: Span) -> Self {
        SpanRange {
            start: span,
            end: span,
        }
    }
}

impl ToTokens for SpanRange {
    /// Two tokens, so that `syn::Error::new_spanned` takes the range back.
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.append(Ident::new("start", self.start));
        tokens.append(Ident::new("end", self.end));
    }
}

/// The spans of a parsed declaration, by path.
pub struct Spans {
    map: HashMap<String, SpanRange>,
    module: SpanRange,
}

impl Spans {
    /// `module` is where a problem of the declaration as a whole points.
    pub fn new(module: Span) -> Self {
        Spans {
            map: HashMap::new(),
            module: module.into(),
        }
    }

    pub fn set(&mut self, path: impl Into<String>, span: impl Into<SpanRange>) {
        self.map.insert(path.into(), span.into());
    }

    /// The span recorded at exactly `path`.
    pub fn get(&self, path: &str) -> Option<SpanRange> {
        self.map.get(path).copied()
    }

    /// The span of `path`, or of its closest recorded ancestor, or of the module.
    pub fn at(&self, path: &str) -> SpanRange {
        let mut path = path;
        loop {
            if let Some(span) = self.map.get(path) {
                return *span;
            }
            match path.rfind('/') {
                Some(end) => path = &path[..end],
                None => return self.module,
            }
        }
    }
}
