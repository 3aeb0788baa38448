//! The component's settings and its unions.

use crate::errors::Errors;
use crate::model::Component;
use crate::names;
use crate::spans::Spans;

/// A declared `name` and `app_module` are Convex names; a declared `client` is a Rust type name;
/// a declared `compat_factory` is a TypeScript identifier.
pub fn component_names(component: &Component, spans: &Spans, errors: &mut Errors) {
    for (key, value) in [
        ("name", &component.name),
        ("app_module", &component.app_module),
    ] {
        if let (Some(span), Some(problem)) = (
            spans.get(&format!("#component/{key}")),
            names::convex_name_problem(value),
        ) {
            errors.at(span, problem);
        }
    }
    if let (Some(span), Some(factory)) = (
        spans.get("#component/compat_factory"),
        &component.compat_factory,
    ) {
        if !names::is_js_identifier(factory) {
            errors.at(span, format!("`{factory}` is not a TypeScript identifier"));
        }
    }
    if let Some(span) = spans.get("#component/client") {
        if syn::parse_str::<syn::Ident>(&component.client_name).is_err() {
            errors.at(
                span,
                format!("`{}` is not a Rust type name", component.client_name),
            );
        }
    }
}

/// A union has variants, with distinct wire names.
pub fn union_variants(component: &Component, spans: &Spans, errors: &mut Errors) {
    for union in &component.unions {
        if union.variants.is_empty() {
            errors.at(
                spans.at(&union.rust_name),
                "a union needs at least one variant",
            );
        }
        for (i, variant) in union.variants.iter().enumerate() {
            if union.variants[..i]
                .iter()
                .any(|other| other.name.wire == variant.name.wire)
            {
                errors.at(
                    spans.at(&format!("{}/{}", union.rust_name, variant.name.rust)),
                    format!("duplicate variant wire name `{}`", variant.name.wire),
                );
            }
        }
    }
}
