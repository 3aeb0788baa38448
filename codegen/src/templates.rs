//! The Handlebars templates of `templates/`, embedded at build time (see `build.rs`) so that the
//! output does not depend on the working directory. Every file there is registered: the file
//! templates by their name (`component_lib`), the partials by their path under `partials/`
//! (`access/insert`, `after/decrement_referenced`, `validator`), so adding a partial is adding a
//! file.
//!
//! The templates own the shape of the TypeScript; the views (`crate::view`) hand them data only.
//! Whitespace does not matter: every rendered file is formatted afterwards (`crate::format`).

use handlebars::{handlebars_helper, Handlebars};
use serde::Serialize;

use crate::error::Error;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

pub const COMPONENT_CONVEX_CONFIG: &str = "component_convex_config";
pub const COMPONENT_VALIDATORS: &str = "component_validators";
pub const COMPONENT_LIMITS: &str = "component_limits";
pub const COMPONENT_BUDGET: &str = "component_budget";
pub const COMPONENT_CHECKS: &str = "component_checks";
pub const COMPONENT_CLOCK: &str = "component_clock";
pub const COMPONENT_FILTERS: &str = "component_filters";
pub const COMPONENT_SCHEMA: &str = "component_schema";
pub const COMPONENT_LIB: &str = "component_lib";
pub const COMPONENT_GENERATED_COMPONENT: &str = "component_generated_component";
pub const COMPONENT_GENERATED_DATA_MODEL: &str = "component_generated_data_model";
pub const GENERATED_API: &str = "generated_api";
pub const GENERATED_SERVER: &str = "generated_server";
pub const PUBLIC_API: &str = "public_api";
pub const APP_MODULE: &str = "app_module";
pub const APP_GENERATED_DATA_MODEL: &str = "app_generated_data_model";

// `{{> (concat "access/" pattern) this}}`: a partial chosen by the data's tag.
handlebars_helper!(concat: |*args| args.iter().map(|arg| match arg {
    serde_json::Value::String(text) => text.clone(),
    other => other.to_string(),
}).collect::<String>());

pub struct Templates {
    registry: Handlebars<'static>,
    declaration: String,
}

/// What every template receives: the declaration it comes from and its file's view.
#[derive(Serialize)]
struct Context<'a, T: Serialize> {
    /// The declaration's path, relative to the repository root (the `header` partial names it).
    declaration: &'a str,
    file: &'a T,
}

impl Templates {
    /// The templates, for the output of the declaration at `declaration` (named in the header).
    pub fn new(declaration: &str) -> Result<Self, Error> {
        let mut registry = Handlebars::new();
        // A misspelt or missing field is an error, not an empty string in the output.
        registry.set_strict_mode(true);
        // The output is TypeScript, not HTML.
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper("concat", Box::new(concat));
        for (name, source) in embedded::TEMPLATES {
            registry
                .register_template_string(name, *source)
                .map_err(|error| Error::TemplateRegistration(Box::new(error)))?;
        }
        Ok(Templates {
            registry,
            declaration: declaration.to_owned(),
        })
    }

    pub fn render<T: Serialize>(&self, name: &str, file: &T) -> Result<String, Error> {
        self.registry
            .render(
                name,
                &Context {
                    declaration: &self.declaration,
                    file,
                },
            )
            .map_err(|source| Error::Template {
                name: name.to_owned(),
                source: Box::new(source),
            })
    }
}
