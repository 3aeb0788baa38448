//! The expansion of the project's real declaration, formatted: the contract between the
//! declaration and the Rust API everyone else builds on. Review any change to the snapshot.

use durable_execution_storage_convex_ir::find_component_module;

use super::expand;

const DECLARATION: &str = include_str!("../../../src/declaration.rs");

fn expanded_declaration() -> String {
    let file = syn::parse_file(DECLARATION).expect("the declaration parses");
    let (attr, module) = find_component_module(&file).expect("a #[convex_component] module");
    let module = strip_component_attribute(module.clone());
    let tokens = expand(attr, quote::ToTokens::to_token_stream(&module));
    let file = syn::parse2::<syn::File>(tokens).expect("the expansion is valid Rust");
    prettyplease::unparse(&file)
}

/// The compiler hands the macro its item without the attribute being expanded.
fn strip_component_attribute(mut module: syn::ItemMod) -> syn::ItemMod {
    module.attrs.retain(|attr| {
        attr.path()
            .segments
            .last()
            .is_none_or(|segment| segment.ident != "convex_component")
    });
    module
}

#[test]
fn expansion_of_the_declaration() {
    insta::assert_snapshot!(expanded_declaration());
}

#[test]
fn a_broken_declaration_expands_to_its_errors_only() {
    let tokens = expand(
        quote::quote!(name = "x"),
        quote::quote!(
            mod m {
                #[convex(object)]
                pub struct A {
                    pub a: f32,
                }
            }
        ),
    );
    let text = tokens.to_string();
    assert!(text.contains("compile_error"), "{text}");
    assert!(!text.contains("pub mod"), "no half-generated items: {text}");
}
