//! View models: the data the templates print, derived from the IR (names, field lists, flags
//! derived from the operations, literals as JSON strings). No TypeScript is assembled here: the
//! templates and their partials own the shape of the code, and the formatter (`crate::format`)
//! lays it out.

pub mod checks;
pub mod clock;
pub mod docs;
pub mod functions;
pub mod public_api;
pub mod types;
pub mod validators;

use serde::Serialize;

use durable_execution_storage_convex_ir::{Access, Component, FunctionKind};

use crate::error::Error;
use crate::OutputLayout;
use types::{json_string, TsProp, TsType, Types};
use validators::DELETE_ALL_LIMIT_ARG;

/// `convex.config.ts` and `schema.ts`.
#[derive(Debug, Serialize)]
pub struct ComponentFile {
    pub component_name: String,
    pub name_literal: String,
    pub tables: Vec<SchemaTable>,
}

/// `<wire_name>: defineTable(<validator>).index(...)...`.
#[derive(Debug, Serialize)]
pub struct SchemaTable {
    pub wire_name: String,
    pub validator: String,
    pub indexes: Vec<SchemaIndex>,
}

#[derive(Debug, Serialize)]
pub struct SchemaIndex {
    pub name: String,
    pub fields: Vec<String>,
}

pub fn component_file(component: &Component) -> ComponentFile {
    let tables = component
        .tables
        .iter()
        .map(|table| SchemaTable {
            wire_name: table.wire_name.clone(),
            validator: format!("v{}", table.rust_name),
            indexes: table
                .indexes
                .iter()
                .map(|index| SchemaIndex {
                    name: index.name.clone(),
                    fields: index.fields.iter().map(|f| f.wire.clone()).collect(),
                })
                .collect(),
        })
        .collect();
    ComponentFile {
        component_name: component.name.clone(),
        name_literal: json_string(&component.name),
        tables,
    }
}

/// `_generated/api.ts` of the component or of the app.
#[derive(Debug, Serialize)]
pub struct GeneratedApiFile {
    pub modules: Vec<String>,
    /// The app's mounted components.
    pub components: Vec<MountedComponent>,
}

/// `name: import('<path>').ComponentApi<'name'>`.
#[derive(Debug, Serialize)]
pub struct MountedComponent {
    pub name: String,
    /// The component's `_generated/component.js`, relative to the app's `_generated/`.
    pub path: String,
}

/// `_generated/component.ts`: the component's typed API as its parent sees it.
#[derive(Debug, Serialize)]
pub struct ComponentApiFile {
    pub functions: Vec<ComponentApiFunction>,
}

/// `name: FunctionReference<kind, 'internal', args, returns, Name>`.
#[derive(Debug, Serialize)]
pub struct ComponentApiFunction {
    pub name: String,
    pub kind: &'static str,
    pub args: TsType,
    pub returns: TsType,
}

pub fn component_api(component: &Component) -> Result<ComponentApiFile, Error> {
    let types = Types::new(component);
    let mut functions = Vec::new();
    for operation in &component.operations {
        let kind = match operation.kind {
            FunctionKind::Query => "query",
            FunctionKind::Mutation | FunctionKind::Action => "mutation",
        };
        let (args, returns) = if let Access::DeleteAll = operation.access {
            (
                TsType::Object {
                    props: vec![TsProp {
                        key: DELETE_ALL_LIMIT_ARG.into(),
                        optional: false,
                        ty: TsType::Keyword { name: "number" },
                    }],
                },
                TsType::Keyword { name: "boolean" },
            )
        } else {
            let mut props = Vec::new();
            for field in &operation.args {
                props.push(TsProp {
                    key: field.name.wire.clone(),
                    optional: field.optional,
                    ty: types.ts_type(&field.ty)?,
                });
            }
            props.sort_by(|a, b| a.key.cmp(&b.key));
            (TsType::Object { props }, types.ts_type(&operation.returns)?)
        };
        functions.push(ComponentApiFunction {
            name: operation.name.clone(),
            kind,
            args,
            returns,
        });
    }
    Ok(ComponentApiFile { functions })
}

/// The app module (`convex/app/<app_module>.ts`).
#[derive(Debug, Serialize)]
pub struct AppModuleFile {
    pub app_module: String,
    pub factory: String,
    pub public_api_import_literal: String,
    pub component_name: String,
    /// The public functions it exports.
    pub names: Vec<String>,
}

pub fn app_module(component: &Component, layout: &OutputLayout) -> AppModuleFile {
    let pascal = durable_execution_storage_convex_ir::names::pascal_case(&component.name);
    AppModuleFile {
        app_module: component.app_module.clone(),
        factory: format!("make{pascal}PublicApi"),
        public_api_import_literal: json_string(&layout.public_api_import()),
        component_name: component.name.clone(),
        names: component
            .operations
            .iter()
            .map(|operation| operation.name.clone())
            .collect(),
    }
}

/// The component's `_generated/api.ts`: its modules are the generated files of its directory
/// but the schema and the config (`modules`: their names without `.ts`).
pub fn component_generated_api(modules: Vec<String>) -> GeneratedApiFile {
    GeneratedApiFile {
        modules,
        components: Vec::new(),
    }
}

pub fn app_generated_api(component: &Component, layout: &OutputLayout) -> GeneratedApiFile {
    let generated_dir = format!("{}/_generated", layout.app_dir);
    let component_api = format!("{}/_generated/component.js", layout.component_dir);
    GeneratedApiFile {
        modules: vec![component.app_module.clone()],
        components: vec![MountedComponent {
            name: component.name.clone(),
            path: relative_path(&generated_dir, &component_api),
        }],
    }
}

/// The import specifier of `target` (a path without extension) from the directory `from`.
pub fn relative_module(from_dir: &str, target: &str) -> String {
    let path = relative_path(from_dir, target);
    if path.starts_with('.') {
        path
    } else {
        format!("./{path}")
    }
}

/// `a/b` → `c/d.ts` gives `../../c/d.ts`.
pub fn relative_path(from_dir: &str, target: &str) -> String {
    let from: Vec<&str> = from_dir.split('/').filter(|s| !s.is_empty()).collect();
    let to: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
    let common = from
        .iter()
        .zip(to.iter())
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(to[common..].iter().map(|s| (*s).to_owned()));
    let joined = parts.join("/");
    if joined.starts_with("..") {
        joined
    } else {
        format!("./{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::relative_path;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(
                "convex/app/_generated",
                "generated/component/_generated/component.js"
            ),
            "../../../generated/component/_generated/component.js"
        );
        assert_eq!(relative_path("convex/app", "convex/app/x"), "./x");
    }
}
