//! Formats every generated TypeScript file with `dprint-plugin-typescript`, configured close to
//! the repository's `.prettierrc.json` (print width 100, two-space indent, no semicolons,
//! single quotes, trailing commas where a list breaks). The templates therefore print the code's
//! shape without laying out lines; `codegen check` compares the committed files with this
//! formatted output, which is what keeps them formatted (prettier does not check them).

use std::path::Path;
use std::sync::OnceLock;

use dprint_plugin_typescript::configuration::{
    Configuration, ConfigurationBuilder, NamedTypeImportsExportsOrder, OperatorPosition,
    QuoteStyle, SemiColons, SortOrder, TrailingCommas, UseParentheses,
};
use dprint_plugin_typescript::{format_text, FormatTextOptions};

use crate::error::Error;

/// Prettier's `printWidth` in `.prettierrc.json`.
pub const LINE_WIDTH: u32 = 100;

/// The formatter's configuration: `.prettierrc.json`'s settings and prettier's habits where
/// dprint's defaults differ (binary operators end the line, arrow parameters in parentheses).
pub fn configuration() -> &'static Configuration {
    static CONFIGURATION: OnceLock<Configuration> = OnceLock::new();
    CONFIGURATION.get_or_init(|| {
        ConfigurationBuilder::new()
            .line_width(LINE_WIDTH)
            .indent_width(2)
            .use_tabs(false)
            .semi_colons(SemiColons::Asi)
            .quote_style(QuoteStyle::PreferSingle)
            .trailing_commas(TrailingCommas::OnlyMultiLine)
            .binary_expression_operator_position(OperatorPosition::SameLine)
            .arrow_function_use_parentheses(UseParentheses::Force)
            .module_sort_import_declarations(SortOrder::Maintain)
            .import_declaration_sort_named_imports(SortOrder::CaseSensitive)
            .import_declaration_sort_type_only_imports(NamedTypeImportsExportsOrder::Last)
            .build()
    })
}

/// `text` formatted; `path` (relative, `.ts`) names the file in a parse error.
pub fn typescript(path: &str, text: String) -> Result<String, Error> {
    let formatted = format_text(FormatTextOptions {
        path: Path::new(path),
        extension: Some("ts"),
        text: text.clone(),
        config: configuration(),
        external_formatter: None,
    })
    .map_err(|error| Error::Format {
        path: path.to_owned(),
        message: error.to_string(),
    })?;
    // `None`: already formatted.
    Ok(formatted.unwrap_or(text))
}
