//! The view of `validators.ts`: one exported validator (and its inferred type) per union,
//! object and table-derived type, in dependency order, then each operation's args and returns.

use serde::Serialize;

use durable_execution_storage_convex_ir::{Access, Component, Operation};

use super::docs::{js_doc, Doc};
use super::types::{
    collect_named, json_string, operation_type_prefix, NamedType, Types, Validator, ValidatorField,
};
use crate::error::Error;

#[derive(Debug, Serialize)]
pub struct ValidatorsFile {
    pub declarations: Vec<ValidatorDeclaration>,
}

/// `export const <name> = <validator>` and `export type <type_name> = Infer<typeof <name>>`.
#[derive(Debug, Serialize)]
pub struct ValidatorDeclaration {
    pub doc: Doc,
    pub name: String,
    pub type_name: String,
    pub validator: Validator,
}

impl ValidatorDeclaration {
    fn new(doc: Doc, name: String, type_name: String, validator: Validator) -> Self {
        ValidatorDeclaration {
            doc,
            name,
            type_name,
            validator,
        }
    }
}

/// The validator names of one operation, for the component function and the public function.
#[derive(Debug, Clone, Serialize)]
pub struct OperationValidators {
    pub component_args: String,
    pub component_returns: String,
    pub public_args: String,
    pub public_returns: String,
    /// Type names inferred from the component validators.
    pub component_args_type: String,
    pub component_returns_type: String,
}

/// The component-side args of a `delete_all` operation: the batch size.
pub const DELETE_ALL_LIMIT_ARG: &str = "limit";

pub fn operation_validators(operation: &Operation) -> OperationValidators {
    let prefix = operation_type_prefix(&operation.name);
    let batch = if matches!(operation.access, Access::DeleteAll) {
        "Batch"
    } else {
        ""
    };
    OperationValidators {
        component_args: format!("v{prefix}{batch}Args"),
        component_returns: format!("v{prefix}{batch}Returns"),
        public_args: format!("vPublic{prefix}Args"),
        public_returns: format!("vPublic{prefix}Returns"),
        component_args_type: format!("{prefix}{batch}Args"),
        component_returns_type: format!("{prefix}{batch}Returns"),
    }
}

/// Whether the public function's args (or returns) need their own validator (ids as strings).
pub struct PublicVariants {
    pub args: bool,
    pub returns: bool,
}

pub fn public_variants(types: &Types<'_>, operation: &Operation) -> Result<PublicVariants, Error> {
    let mut args = false;
    for field in &operation.args {
        args |= types.contains_id(&field.ty)?;
    }
    Ok(PublicVariants {
        args,
        returns: types.contains_id(&operation.returns)?,
    })
}

/// The public validator names, falling back to the component's when they are the same.
pub fn public_validator_names(
    types: &Types<'_>,
    operation: &Operation,
) -> Result<(String, String), Error> {
    let names = operation_validators(operation);
    let variants = public_variants(types, operation)?;
    let prefix = operation_type_prefix(&operation.name);
    let args = if variants.args {
        names.public_args
    } else {
        format!("v{prefix}Args")
    };
    let returns = if variants.returns {
        names.public_returns
    } else {
        format!("v{prefix}Returns")
    };
    Ok((args, returns))
}

pub fn build(component: &Component) -> Result<ValidatorsFile, Error> {
    let types = Types::new(component);
    let mut declarations = Vec::new();
    for named in named_types_in_order(component)? {
        for public in [false, true] {
            if public && !types.named_contains_id(named)? {
                continue;
            }
            declarations.push(named_declaration(&types, named, public)?);
        }
    }
    for operation in &component.operations {
        declarations.extend(operation_declarations(&types, operation)?);
    }
    Ok(ValidatorsFile { declarations })
}

/// Unions, objects and table-derived types, each after the types it mentions (declaration
/// order otherwise), so that every `const` is defined before it is used.
pub fn named_types_in_order(component: &Component) -> Result<Vec<NamedType<'_>>, Error> {
    let mut candidates: Vec<NamedType> = Vec::new();
    candidates.extend(
        component
            .unions
            .iter()
            .map(|u| NamedType::Union(&u.rust_name)),
    );
    candidates.extend(
        component
            .objects
            .iter()
            .map(|o| NamedType::Object(&o.rust_name)),
    );
    for table in &component.tables {
        candidates.push(NamedType::TableFields(&table.rust_name));
        candidates.push(NamedType::Document(&table.rust_name));
        candidates.push(NamedType::Filters(&table.rust_name));
        if table
            .fields
            .iter()
            .any(|f| f.update == durable_execution_storage_convex_ir::UpdateMode::Unsettable)
        {
            candidates.push(NamedType::Unset(&table.rust_name));
        }
        candidates.push(NamedType::Update(&table.rust_name));
    }
    let mut ordered = Vec::new();
    let mut visiting = Vec::new();
    for candidate in &candidates {
        visit(component, *candidate, &mut ordered, &mut visiting)?;
    }
    Ok(ordered)
}

fn visit<'c>(
    component: &'c Component,
    named: NamedType<'c>,
    ordered: &mut Vec<NamedType<'c>>,
    visiting: &mut Vec<NamedType<'c>>,
) -> Result<(), Error> {
    if ordered.contains(&named) {
        return Ok(());
    }
    if visiting.contains(&named) {
        return Err(Error::Ir(format!(
            "recursive types are not supported: {named:?}"
        )));
    }
    visiting.push(named);
    for dependency in dependencies(component, named)? {
        visit(component, dependency, ordered, visiting)?;
    }
    visiting.pop();
    ordered.push(named);
    Ok(())
}

fn dependencies<'c>(
    component: &'c Component,
    named: NamedType<'c>,
) -> Result<Vec<NamedType<'c>>, Error> {
    let mut out = Vec::new();
    let mut fields_of = |fields: &'c [durable_execution_storage_convex_ir::Field]| {
        for field in fields {
            collect_named(&field.ty, &mut out);
        }
    };
    let table = |name: &str| {
        component
            .table(name)
            .ok_or_else(|| Error::Ir(format!("unknown table `{name}`")))
    };
    match named {
        NamedType::Union(_) => {}
        NamedType::Object(name) => {
            let object = component
                .object(name)
                .ok_or_else(|| Error::Ir(format!("unknown object `{name}`")))?;
            fields_of(&object.fields);
        }
        NamedType::TableFields(name) | NamedType::Filters(name) => fields_of(&table(name)?.fields),
        NamedType::Update(name) => {
            fields_of(&table(name)?.fields);
            let has_unset = table(name)?
                .fields
                .iter()
                .any(|f| f.update == durable_execution_storage_convex_ir::UpdateMode::Unsettable);
            if has_unset {
                out.push(NamedType::Unset(name));
            }
        }
        NamedType::Document(name) => out.push(NamedType::TableFields(name)),
        NamedType::Unset(_) => {}
    }
    Ok(out)
}

fn named_declaration(
    types: &Types<'_>,
    named: NamedType<'_>,
    public: bool,
) -> Result<ValidatorDeclaration, Error> {
    let type_name = types.type_name(named)?;
    let name = types.validator_name(named, public)?;
    let public_type_name = if public {
        format!("Public{type_name}")
    } else {
        type_name.clone()
    };
    let (doc, expr) = match named {
        NamedType::Union(rust_name) => {
            let union = types
                .component
                .union(rust_name)
                .ok_or_else(|| Error::Ir(format!("unknown union `{rust_name}`")))?;
            let mut literals: Vec<Validator> = union
                .variants
                .iter()
                .map(|variant| Validator::Literal {
                    value: json_string(&variant.name.wire),
                })
                .collect();
            let expr = if literals.len() == 1 {
                literals.remove(0)
            } else {
                Validator::Union { members: literals }
            };
            (union.doc.clone(), expr)
        }
        NamedType::Document(table) => {
            let table_def = types.table(table)?;
            let id = if public {
                Validator::String
            } else {
                Validator::Id {
                    table: table_def.wire_name.clone(),
                }
            };
            (
                format!(
                    "A `{}` document as Convex returns it, with its system fields.",
                    table_def.wire_name
                ),
                Validator::Document {
                    id: Box::new(id),
                    fields_of: types.validator_name(NamedType::TableFields(table), public)?,
                },
            )
        }
        _ => {
            let mut fields = Vec::new();
            for field in types.named_fields(named)? {
                fields.push(ValidatorField {
                    key: field.wire.clone(),
                    validator: types.field_validator(&field, public)?,
                });
            }
            (named_doc(types, named)?, Validator::Object { fields })
        }
    };
    let doc = if public {
        format!(
            "`{type_name}` as the public API carries it: ids of the component's tables are plain \
             strings outside the component."
        )
    } else {
        doc
    };
    Ok(ValidatorDeclaration::new(
        js_doc(&doc, 0),
        name,
        public_type_name,
        expr,
    ))
}

fn named_doc(types: &Types<'_>, named: NamedType<'_>) -> Result<String, Error> {
    Ok(match named {
        NamedType::Object(name) => types
            .component
            .object(name)
            .map(|object| object.doc.clone())
            .unwrap_or_default(),
        NamedType::TableFields(table) => types.table(table)?.doc.clone(),
        NamedType::Unset(table) => format!(
            "The fields of a `{}` document an update removes: a `true` entry removes that field.",
            types.table(table)?.wire_name
        ),
        NamedType::Update(table) => format!(
            "An update of a `{}` document: the fields it sets, and `{}` for those it removes.",
            types.table(table)?.wire_name,
            super::types::UNSET_FIELD
        ),
        NamedType::Filters(table) => format!(
            "Filters of the by-id operations on `{}`: a document that does not match every given \
             filter counts as not found.",
            types.table(table)?.wire_name
        ),
        NamedType::Union(_) | NamedType::Document(_) => String::new(),
    })
}

fn operation_declarations(
    types: &Types<'_>,
    operation: &Operation,
) -> Result<Vec<ValidatorDeclaration>, Error> {
    let names = operation_validators(operation);
    let variants = public_variants(types, operation)?;
    let prefix = operation_type_prefix(&operation.name);
    let mut out = Vec::new();
    let args_expr = |public: bool| -> Result<Validator, Error> {
        let mut fields = Vec::new();
        for field in &operation.args {
            let shape = super::types::FieldShape::from_field(field);
            fields.push(ValidatorField {
                key: shape.wire.clone(),
                validator: types.field_validator(&shape, public)?,
            });
        }
        Ok(Validator::Object { fields })
    };
    let args_doc = format!("The arguments of `{}`.", operation.name);
    let returns_doc = format!("What `{}` returns.", operation.name);
    out.push(ValidatorDeclaration::new(
        js_doc(&args_doc, 0),
        format!("v{prefix}Args"),
        format!("{prefix}Args"),
        args_expr(false)?,
    ));
    if variants.args {
        out.push(ValidatorDeclaration::new(
            js_doc(&format!("{args_doc} Ids are plain strings."), 0),
            names.public_args.clone(),
            format!("Public{prefix}Args"),
            args_expr(true)?,
        ));
    }
    out.push(ValidatorDeclaration::new(
        js_doc(&returns_doc, 0),
        format!("v{prefix}Returns"),
        format!("{prefix}Returns"),
        types.validator(&operation.returns, false)?,
    ));
    if variants.returns {
        out.push(ValidatorDeclaration::new(
            js_doc(&format!("{returns_doc} Ids are plain strings."), 0),
            names.public_returns.clone(),
            format!("Public{prefix}Returns"),
            types.validator(&operation.returns, true)?,
        ));
    }
    if let Access::DeleteAll = operation.access {
        // The component deletes one batch per transaction; the public action loops.
        out.push(ValidatorDeclaration::new(
            js_doc(
                &format!(
                    "The arguments of the component's `{}`: how many documents one transaction \
                     deletes.",
                    operation.name
                ),
                0,
            ),
            names.component_args.clone(),
            names.component_args_type.clone(),
            Validator::Object {
                fields: vec![ValidatorField {
                    key: DELETE_ALL_LIMIT_ARG.into(),
                    validator: Validator::Number,
                }],
            },
        ));
        out.push(ValidatorDeclaration::new(
            js_doc(
                &format!(
                    "What the component's `{}` returns: whether documents may remain.",
                    operation.name
                ),
                0,
            ),
            names.component_returns.clone(),
            names.component_returns_type.clone(),
            Validator::Boolean,
        ));
    }
    Ok(out)
}
