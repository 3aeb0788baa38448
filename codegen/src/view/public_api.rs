//! The view of `publicApi.ts`: the auth-protected public functions that call the component.

use serde::Serialize;

use durable_execution_storage_convex_ir::{Access, Component, FunctionKind};

use super::docs::js_doc;
use super::functions::max_limit_constant;
use super::types::{screaming_snake, Types};
use super::validators::{public_validator_names, DELETE_ALL_LIMIT_ARG};
use crate::error::Error;
use crate::layout::{quote, render_import, Expr, Prop};

/// The original package's name of the factory (`durable-execution-storage-convex`'s README).
const COMPAT_FACTORY: &str = "convertDurableExecutionStorageComponentToPublicApiImpl";

/// Indentation of a public handler's body.
const BODY: usize = 8;

#[derive(Debug, Serialize)]
pub struct PublicApiFile {
    pub imports: Vec<String>,
    pub component_name: String,
    pub factory: String,
    pub options_type: String,
    pub api_type: String,
    pub auth_secret_env: String,
    pub previous_auth_secret_env: String,
    pub auth_secret_env_literal: String,
    pub previous_auth_secret_env_literal: String,
    pub test_mode_env_literal: String,
    /// `export function <factory>(component, options)`, laid out.
    pub signature: String,
    /// The original package's name for the factory, kept for compatibility.
    pub compat_factory: &'static str,
    pub uses_test_mode: bool,
    pub test_only_names: String,
    pub functions: Vec<PublicFunction>,
}

#[derive(Debug, Serialize)]
pub struct PublicFunction {
    pub doc: String,
    pub name: String,
    pub name_literal: String,
    /// The handler's destructured arguments.
    pub handler_params: &'static str,
    /// `queryGeneric`, `mutationGeneric` or `actionGeneric`: the kind is part of the contract.
    pub builder: &'static str,
    pub args_validator: String,
    /// `args` may be absent (an operation without arguments: a TypeScript client sends
    /// `args: undefined`).
    pub args_optional: bool,
    pub returns_validator: String,
    pub test_only: bool,
    /// `return await ctx.runQuery(...)`, laid out at the handler body's indentation.
    pub call: Option<String>,
    /// The batch loop of `deleteAll`.
    pub delete_all: Option<String>,
}

pub fn build(component: &Component) -> Result<PublicApiFile, Error> {
    let types = Types::new(component);
    let env_prefix = screaming_snake(&component.name);
    let pascal = durable_execution_storage_convex_ir::names::pascal_case(&component.name);
    let mut validator_imports = Vec::new();
    let mut builders = Vec::new();
    let mut limit_imports = Vec::new();
    let mut functions = Vec::new();
    let mut test_only_names = Vec::new();
    for operation in &component.operations {
        let (args_validator, returns_validator) = public_validator_names(&types, operation)?;
        validator_imports.push(args_validator.clone());
        validator_imports.push(returns_validator.clone());
        let builder = match operation.kind {
            FunctionKind::Query => "queryGeneric",
            FunctionKind::Mutation => "mutationGeneric",
            FunctionKind::Action => "actionGeneric",
        };
        if !builders.contains(&builder) {
            builders.push(builder);
        }
        if operation.test_only {
            test_only_names.push(format!("`{}`", operation.name));
        }
        let run = match operation.kind {
            FunctionKind::Query => "ctx.runQuery",
            FunctionKind::Mutation | FunctionKind::Action => "ctx.runMutation",
        };
        let reference = format!("component.lib.{}", operation.name);
        let args_optional = operation.args.is_empty();
        let (call, delete_all) = if let Access::DeleteAll = operation.access {
            let constant = max_limit_constant(operation);
            limit_imports.push(constant.clone());
            let prefix = "more = await ";
            let batch = Expr::call(
                run,
                vec![
                    Expr::atom(reference),
                    Expr::Object(vec![Prop::KeyValue(
                        DELETE_ALL_LIMIT_ARG.into(),
                        Expr::atom(constant),
                    )]),
                ],
            );
            (
                None,
                Some(batch.render(BODY + 2, BODY + 2 + prefix.len(), 0)),
            )
        } else {
            let args = if args_optional { "args ?? {}" } else { "args" };
            let prefix = "return await ";
            let call = Expr::call(run, vec![Expr::atom(reference), Expr::atom(args)]);
            (Some(call.render(BODY, BODY + prefix.len(), 0)), None)
        };
        functions.push(PublicFunction {
            doc: js_doc(&operation.doc, 4),
            name: operation.name.clone(),
            name_literal: quote(&operation.name),
            handler_params: if delete_all.is_some() {
                "{ authSecret }"
            } else {
                "{ authSecret, args }"
            },
            builder,
            args_validator,
            args_optional,
            returns_validator,
            test_only: operation.test_only,
            call,
            delete_all,
        });
    }
    validator_imports.sort();
    validator_imports.dedup();
    builders.sort();
    limit_imports.sort();
    limit_imports.dedup();
    let mut imports = vec![
        render_import(
            &builders.iter().map(|b| (*b).to_owned()).collect::<Vec<_>>(),
            "convex/server",
            false,
        ),
        render_import(
            &["ConvexError".to_owned(), "v".to_owned()],
            "convex/values",
            false,
        ),
        render_import(
            &["ComponentApi".to_owned()],
            "./component/_generated/component",
            true,
        ),
    ];
    if !limit_imports.is_empty() {
        imports.push(render_import(&limit_imports, "./component/limits", false));
    }
    imports.push(render_import(
        &validator_imports,
        "./component/validators",
        false,
    ));
    let factory = format!("make{pascal}PublicApi");
    let options_type = format!("{pascal}PublicApiOptions");
    let signature = Expr::call(
        format!("export function {factory}"),
        vec![
            Expr::atom("component: ComponentApi"),
            Expr::atom(format!("options: {options_type} = {{}}")),
        ],
    )
    .render(0, 0, 2);
    let auth_secret_env = format!("{env_prefix}_AUTH_SECRET");
    let previous_auth_secret_env = format!("{env_prefix}_AUTH_SECRET_PREVIOUS");
    Ok(PublicApiFile {
        imports,
        signature,
        compat_factory: COMPAT_FACTORY,
        auth_secret_env_literal: quote(&auth_secret_env),
        previous_auth_secret_env_literal: quote(&previous_auth_secret_env),
        test_mode_env_literal: quote(&format!("{env_prefix}_TEST_MODE")),
        component_name: component.name.clone(),
        factory,
        options_type,
        api_type: format!("{pascal}PublicApi"),
        auth_secret_env,
        previous_auth_secret_env,
        uses_test_mode: !test_only_names.is_empty(),
        test_only_names: test_only_names.join(", "),
        functions,
    })
}
