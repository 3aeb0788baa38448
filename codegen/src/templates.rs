//! The Handlebars templates, embedded at build time so that the output does not depend on the
//! working directory.

use handlebars::Handlebars;
use serde::Serialize;

use crate::error::Error;
use crate::view::HEADER;

pub const COMPONENT_CONVEX_CONFIG: &str = "component_convex_config";
pub const COMPONENT_VALIDATORS: &str = "component_validators";
pub const COMPONENT_LIMITS: &str = "component_limits";
pub const COMPONENT_BUDGET: &str = "component_budget";
pub const COMPONENT_CHECKS: &str = "component_checks";
pub const COMPONENT_CLOCK: &str = "component_clock";
pub const COMPONENT_SCHEMA: &str = "component_schema";
pub const COMPONENT_LIB: &str = "component_lib";
pub const COMPONENT_LIB_DECREMENT_PARENT: &str = "component_lib_decrement_parent";
pub const COMPONENT_GENERATED_COMPONENT: &str = "component_generated_component";
pub const COMPONENT_GENERATED_DATA_MODEL: &str = "component_generated_data_model";
pub const GENERATED_API: &str = "generated_api";
pub const GENERATED_SERVER: &str = "generated_server";
pub const PUBLIC_API: &str = "public_api";
pub const APP_MODULE: &str = "app_module";
pub const APP_GENERATED_DATA_MODEL: &str = "app_generated_data_model";

const TEMPLATES: &[(&str, &str)] = &[
    (
        COMPONENT_CONVEX_CONFIG,
        include_str!("../../templates/component_convex_config.ts.hbs"),
    ),
    (
        COMPONENT_VALIDATORS,
        include_str!("../../templates/component_validators.ts.hbs"),
    ),
    (
        COMPONENT_LIMITS,
        include_str!("../../templates/component_limits.ts.hbs"),
    ),
    (
        COMPONENT_BUDGET,
        include_str!("../../templates/component_budget.ts.hbs"),
    ),
    (
        COMPONENT_CHECKS,
        include_str!("../../templates/component_checks.ts.hbs"),
    ),
    (
        COMPONENT_CLOCK,
        include_str!("../../templates/component_clock.ts.hbs"),
    ),
    (
        COMPONENT_SCHEMA,
        include_str!("../../templates/component_schema.ts.hbs"),
    ),
    (
        COMPONENT_LIB,
        include_str!("../../templates/component_lib.ts.hbs"),
    ),
    (
        COMPONENT_LIB_DECREMENT_PARENT,
        include_str!("../../templates/component_lib_decrement_parent.ts.hbs"),
    ),
    (
        COMPONENT_GENERATED_COMPONENT,
        include_str!("../../templates/component_generated_component.ts.hbs"),
    ),
    (
        COMPONENT_GENERATED_DATA_MODEL,
        include_str!("../../templates/component_generated_data_model.ts.hbs"),
    ),
    (
        GENERATED_API,
        include_str!("../../templates/generated_api.ts.hbs"),
    ),
    (
        GENERATED_SERVER,
        include_str!("../../templates/generated_server.ts.hbs"),
    ),
    (
        PUBLIC_API,
        include_str!("../../templates/public_api.ts.hbs"),
    ),
    (
        APP_MODULE,
        include_str!("../../templates/app_module.ts.hbs"),
    ),
    (
        APP_GENERATED_DATA_MODEL,
        include_str!("../../templates/app_generated_data_model.ts.hbs"),
    ),
];

pub struct Templates {
    registry: Handlebars<'static>,
}

/// What every template receives: the header line and its file's view.
#[derive(Serialize)]
struct Context<'a, T: Serialize> {
    header: &'static str,
    file: &'a T,
}

impl Templates {
    pub fn new() -> Result<Self, Error> {
        let mut registry = Handlebars::new();
        // A misspelt or missing field is an error, not an empty string in the output.
        registry.set_strict_mode(true);
        // The output is TypeScript, not HTML.
        registry.register_escape_fn(handlebars::no_escape);
        for (name, source) in TEMPLATES {
            registry
                .register_template_string(name, *source)
                .map_err(|error| Error::TemplateRegistration(Box::new(error)))?;
        }
        Ok(Templates { registry })
    }

    pub fn render<T: Serialize>(&self, name: &str, file: &T) -> Result<String, Error> {
        self.registry
            .render(
                name,
                &Context {
                    header: HEADER,
                    file,
                },
            )
            .map_err(|source| Error::Template {
                name: name.to_owned(),
                source: Box::new(source),
            })
    }

    /// A template rendered with `data` as its context (no header): a fragment of a file.
    pub fn render_fragment<T: Serialize>(&self, name: &str, data: &T) -> Result<String, Error> {
        self.registry
            .render(name, data)
            .map_err(|source| Error::Template {
                name: name.to_owned(),
                source: Box::new(source),
            })
    }
}
