//! The view of `publicApi.ts`: the auth-protected public functions that call the component.

use serde::Serialize;

use durable_execution_storage_convex_ir::{Access, Component, FunctionKind};

use super::docs::{js_doc, Doc};
use super::functions::max_limit_constant;
use super::types::{screaming_snake, Types};
use super::validators::{public_validator_names, DELETE_ALL_LIMIT_ARG};
use crate::error::Error;

/// The indentation of a public function's doc comment (in the factory's returned object).
const DOC_INDENT: usize = 4;

#[derive(Debug, Serialize)]
pub struct PublicApiFile {
    pub component_name: String,
    pub factory: String,
    pub options_type: String,
    pub api_type: String,
    pub auth_secret_env: String,
    pub previous_auth_secret_env: String,
    pub test_mode_env: String,
    /// The original package's name for the factory, kept for compatibility.
    pub compat_factory: Option<String>,
    /// The test-only functions (the test mode's env var and check exist only with some).
    pub test_only: Vec<String>,
    pub functions: Vec<PublicFunction>,
}

#[derive(Debug, Serialize)]
pub struct PublicFunction {
    pub doc: Doc,
    pub name: String,
    /// `queryGeneric`, `mutationGeneric` or `actionGeneric`: the kind is part of the contract.
    pub builder: &'static str,
    /// `runQuery` or `runMutation`: how it calls the component's function.
    pub run: &'static str,
    pub args_validator: String,
    /// `args` may be absent (an operation without arguments: a TypeScript client sends
    /// `args: undefined`).
    pub args_optional: bool,
    pub returns_validator: String,
    pub test_only: bool,
    /// The component deletes one batch per call (of at most this `limits.ts` constant's
    /// documents): the public function calls it until nothing is left.
    pub delete_all: Option<DeleteAllBatches>,
}

#[derive(Debug, Serialize)]
pub struct DeleteAllBatches {
    pub limit_arg: &'static str,
    pub max_limit: String,
}

pub fn build(component: &Component) -> Result<PublicApiFile, Error> {
    let types = Types::new(component);
    let env_prefix = screaming_snake(&component.name);
    let pascal = durable_execution_storage_convex_ir::names::pascal_case(&component.name);
    let mut functions = Vec::new();
    for operation in &component.operations {
        let (args_validator, returns_validator) = public_validator_names(&types, operation)?;
        functions.push(PublicFunction {
            doc: js_doc(&operation.doc, DOC_INDENT),
            name: operation.name.clone(),
            builder: match operation.kind {
                FunctionKind::Query => "queryGeneric",
                FunctionKind::Mutation => "mutationGeneric",
                FunctionKind::Action => "actionGeneric",
            },
            run: match operation.kind {
                FunctionKind::Query => "runQuery",
                FunctionKind::Mutation | FunctionKind::Action => "runMutation",
            },
            args_validator,
            args_optional: operation.args.is_empty(),
            returns_validator,
            test_only: operation.test_only,
            delete_all: matches!(operation.access, Access::DeleteAll).then(|| DeleteAllBatches {
                limit_arg: DELETE_ALL_LIMIT_ARG,
                max_limit: max_limit_constant(operation),
            }),
        });
    }
    Ok(PublicApiFile {
        compat_factory: component.compat_factory.clone(),
        component_name: component.name.clone(),
        factory: format!("make{pascal}PublicApi"),
        options_type: format!("{pascal}PublicApiOptions"),
        api_type: format!("{pascal}PublicApi"),
        auth_secret_env: format!("{env_prefix}_AUTH_SECRET"),
        previous_auth_secret_env: format!("{env_prefix}_AUTH_SECRET_PREVIOUS"),
        test_mode_env: format!("{env_prefix}_TEST_MODE"),
        test_only: component
            .operations
            .iter()
            .filter(|operation| operation.test_only)
            .map(|operation| operation.name.clone())
            .collect(),
        functions,
    })
}
