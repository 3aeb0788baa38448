//! The checks over the IR, serde_derive's `check.rs` style: one function per rule, each
//! reporting every violation it finds at the span recorded for the part at fault. All rules
//! run, so a declaration's problems are reported at once.
//!
//! A new rule is a function here (in the module of what it is about), a line in [`RULES`] and a
//! compile-fail case under `tests/compile_fail/`, named in the line.

mod access;
mod component;
mod fields;
mod operations;
mod tables;

use crate::errors::Errors;
use crate::model::Component;
use crate::spans::Spans;

/// One rule of a well-formed declaration.
pub struct Rule {
    /// What it checks, as the function is named.
    pub name: &'static str,
    /// The cases of `tests/compile_fail/` (file stems) that break it.
    pub compile_fail: &'static [&'static str],
    run: fn(&Component, &Spans, &mut Errors),
}

impl Rule {
    /// The messages this rule alone reports on the declarations of a source file (a Rust file
    /// with `#[convex_component]` modules), or `None` when the file does not parse as Rust: so
    /// that a test can show that each compile-fail case breaks the rules it is named for, with
    /// the messages its `.stderr` shows.
    pub fn messages_on(&self, source: &str) -> Option<Vec<String>> {
        let mut errors = Errors::default();
        for (component, spans) in crate::parse::parse_unchecked(source)? {
            (self.run)(&component, &spans, &mut errors);
        }
        Some(errors.messages())
    }
}

macro_rules! rules {
    ($($module:ident::$name:ident => [$($test:literal),+],)*) => {
        /// Every rule, in the order they run.
        pub const RULES: &[Rule] = &[$(Rule {
            name: stringify!($name),
            compile_fail: &[$($test),+],
            run: $module::$name,
        },)*];
    };
}

rules! {
    component::component_names => ["component_names"],
    component::union_variants => ["union_variants"],
    fields::field_names => ["convex_name_limits", "table_and_field_names"],
    fields::stored_field_types => ["unsupported_field_types"],
    fields::update_modes => ["update_modes", "several_errors_at_once"],
    fields::server_time_fields => ["server_time_misuse"],
    fields::integer_bounds => ["integer_bounds_misuse"],
    fields::filters_on_scalar_fields => ["filter_on_non_scalar_field"],
    tables::table_names => ["no_table_and_duplicate_table", "table_and_field_names"],
    tables::index_names => ["duplicate_index_name", "convex_name_limits", "table_and_field_names"],
    tables::index_fields => ["index_fields", "convex_name_limits"],
    tables::index_count => ["too_many_indexes"],
    operations::operation_names => ["duplicate_operation_name", "operation_names"],
    operations::returns_match_access => ["returns_match_access"],
    operations::queries_do_not_write => ["query_writes"],
    operations::query_retry => ["retry_safety_misuse"],
    access::access_argument_types => ["access_argument_types"],
    access::bound_values => ["bound_values"],
    access::index_serves_bounds => ["range_not_served_by_index", "index_prefix"],
    access::optional_range_bounded_below => ["range_on_optional_field"],
    access::insert_children_needs_first => ["insert_children_needs_first"],
    access::add_is_integer => ["add_misuse"],
    access::decrement_referenced => ["decrement_referenced_misuse"],
}

/// Runs every rule over `component`.
pub fn check(component: &Component, spans: &Spans, errors: &mut Errors) {
    for rule in RULES {
        (rule.run)(component, spans, errors);
    }
}
