//! From `syn` to the IR: items, then fields and types, then operations and their access
//! patterns.
//!
//! Parsing reports only what keeps it from building the IR: malformed attributes, unknown or
//! missing keys, unsupported types, and names that refer to nothing (a field, an index, a
//! table, a type that the module does not declare). It records the span of everything it reads
//! in `Spans`; every rule about what a well-formed declaration means is a check over the IR
//! (`crate::check`), which points at the offending attribute through those spans.

mod access;
mod items;
mod types;

use proc_macro2::TokenStream;
use syn::punctuated::Punctuated;
use syn::{Expr, Item, ItemMod, Token};

use crate::check;
use crate::errors::Errors;
use crate::meta::{self, Entry};
use crate::model::Component;
use crate::names;
use crate::spans::Spans;

/// The keys of `#[convex_component(...)]`.
const COMPONENT_KEYS: &[&str] = &["name", "app_module", "client", "compat_factory"];

/// Parses and checks a declaration: the arguments of `#[convex_component(...)]` and the inline
/// module it is attached to. All problems are reported at once: those of parsing, then those of
/// the checks over what could be parsed.
pub fn parse_component(attr: TokenStream, module: &ItemMod) -> syn::Result<Component> {
    let mut errors = Errors::default();
    let mut spans = Spans::new(module.ident.span());
    let component = parse(attr, module, &mut spans, &mut errors);
    if let Some(component) = &component {
        check::check(component, &spans, &mut errors);
    }
    match component {
        Some(component) => errors.finish(component),
        None => Err(errors.into_error()),
    }
}

/// syn → IR, with the spans beside it; `None` when there is no module to read.
fn parse(
    attr: TokenStream,
    module: &ItemMod,
    spans: &mut Spans,
    errors: &mut Errors,
) -> Option<Component> {
    let settings = parse_settings(attr, spans, errors);

    let Some((_, content)) = &module.content else {
        errors.error(
            module.ident.span(),
            "`#[convex_component]` needs an inline module: `mod name { ... }`",
        );
        return None;
    };

    let name = settings
        .name
        .unwrap_or_else(|| names::camel_case(&module.ident.to_string()));
    let app_module = settings.app_module.unwrap_or_else(|| name.clone());
    let client_name = settings
        .client
        .unwrap_or_else(|| format!("{}Client", names::pascal_case(&name)));

    let declared = items::collect(content, errors);
    let mut component = Component {
        name,
        app_module,
        rust_module: module.ident.to_string(),
        client_name,
        compat_factory: settings.compat_factory,
        doc: meta::doc_of(&module.attrs),
        objects: Vec::new(),
        unions: Vec::new(),
        tables: Vec::new(),
        operations: Vec::new(),
    };
    items::resolve(
        &declared,
        &mut component,
        module.ident.span(),
        spans,
        errors,
    );
    Some(component)
}

#[derive(Default)]
struct Settings {
    name: Option<String>,
    app_module: Option<String>,
    client: Option<String>,
    compat_factory: Option<String>,
}

fn parse_settings(attr: TokenStream, spans: &mut Spans, errors: &mut Errors) -> Settings {
    let mut settings = Settings::default();
    let exprs =
        match syn::parse::Parser::parse2(Punctuated::<Expr, Token![,]>::parse_terminated, attr) {
            Ok(exprs) => exprs,
            Err(error) => {
                errors.push(error);
                return settings;
            }
        };
    let entries: Vec<Entry> = exprs
        .iter()
        .filter_map(|expr| meta::entry_of(expr, errors))
        .collect();
    meta::check_unique_keys(&entries, "`#[convex_component(...)]`", errors);
    for entry in &entries {
        let slot = match entry.name().as_str() {
            "name" => &mut settings.name,
            "app_module" => &mut settings.app_module,
            "client" => &mut settings.client,
            "compat_factory" => &mut settings.compat_factory,
            _ => {
                meta::unknown_key(entry, "`#[convex_component(...)]`", COMPONENT_KEYS, errors);
                continue;
            }
        };
        if let Some((value, span)) = meta::string_value(entry, errors) {
            spans.set(format!("#component/{}", entry.name()), span);
            *slot = Some(value);
        }
    }
    settings
}

/// Every declaration of a source file parsed without the checks, with its spans: what the rules
/// run over, as in [`parse_component`] (parsing errors aside). `None` when the file does not
/// parse as Rust.
pub(crate) fn parse_unchecked(source: &str) -> Option<Vec<(Component, Spans)>> {
    let file = syn::parse_file(source).ok()?;
    let mut found = Vec::new();
    collect_component_modules(&file.items, &mut found);
    Some(
        found
            .into_iter()
            .filter_map(|(attr, module)| {
                let mut spans = Spans::new(module.ident.span());
                let component = parse(attr, module, &mut spans, &mut Errors::default())?;
                Some((component, spans))
            })
            .collect(),
    )
}

/// Finds the module carrying `#[convex_component]` in a source file and parses it, as the
/// proc-macro would: this is how the generator reads the same declaration.
pub fn parse_declaration_file(source: &str) -> Result<Component, FileError> {
    let file = syn::parse_file(source).map_err(FileError::from_syn)?;
    let mut found = Vec::new();
    collect_component_modules(&file.items, &mut found);
    match found.as_slice() {
        [(attr, module)] => parse_component(attr.clone(), module).map_err(FileError::from_syn),
        [] => Err(FileError {
            messages: vec![(
                None,
                "no module with `#[convex_component(...)]` found".to_owned(),
            )],
        }),
        _ => Err(FileError {
            messages: vec![(
                None,
                "more than one module with `#[convex_component(...)]`; declare one per file"
                    .to_owned(),
            )],
        }),
    }
}

/// The first module carrying `#[convex_component(...)]` in a parsed file (nested modules
/// included), with the attribute's arguments: what the proc-macro would receive.
pub fn find_component_module(file: &syn::File) -> Option<(TokenStream, &ItemMod)> {
    let mut found = Vec::new();
    collect_component_modules(&file.items, &mut found);
    found.into_iter().next()
}

fn collect_component_modules<'a>(items: &'a [Item], found: &mut Vec<(TokenStream, &'a ItemMod)>) {
    for item in items {
        if let Item::Mod(module) = item {
            for attr in &module.attrs {
                let is_component = attr
                    .path()
                    .segments
                    .last()
                    .is_some_and(|segment| segment.ident == "convex_component");
                if is_component {
                    let args = match &attr.meta {
                        syn::Meta::List(list) => list.tokens.clone(),
                        _ => TokenStream::new(),
                    };
                    found.push((args, module));
                }
            }
            if let Some((_, content)) = &module.content {
                collect_component_modules(content, found);
            }
        }
    }
}

/// Errors of a declaration read from a file, with line and column where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// `(line:column, message)`, 1-based lines.
    pub messages: Vec<(Option<(usize, usize)>, String)>,
}

impl FileError {
    fn from_syn(error: syn::Error) -> Self {
        FileError {
            messages: error
                .into_iter()
                .map(|error| {
                    let start = error.span().start();
                    (Some((start.line, start.column + 1)), error.to_string())
                })
                .collect(),
        }
    }

    /// `path:line:column: message` lines, as compilers print them.
    pub fn render(&self, path: &str) -> String {
        self.messages
            .iter()
            .map(|(position, message)| match position {
                Some((line, column)) => format!("{path}:{line}:{column}: error: {message}"),
                None => format!("{path}: error: {message}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
