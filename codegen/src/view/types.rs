//! How IR types become Convex validators (`v.*` expressions), TypeScript types and names.

use durable_execution_storage_convex_ir::names::pascal_case;
use durable_execution_storage_convex_ir::{Component, Field, Table, TypeRef, UpdateMode};

use serde::Serialize;

use crate::error::Error;

/// A Convex validator (`v.*`), as the `validator` partial prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Validator {
    Null,
    Boolean,
    String,
    Number,
    Id {
        table: String,
    },
    /// `value`: a JSON literal.
    Literal {
        value: String,
    },
    /// A validator of `validators.ts`, by name.
    Named {
        name: String,
    },
    Optional {
        inner: Box<Validator>,
    },
    Array {
        element: Box<Validator>,
    },
    Union {
        members: Vec<Validator>,
    },
    Object {
        fields: Vec<ValidatorField>,
    },
    /// A document: the system fields, then the fields of the validator `fields_of`.
    Document {
        id: Box<Validator>,
        fields_of: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidatorField {
    pub key: String,
    pub validator: Validator,
}

/// A TypeScript type of the component's API, as the `ts_type` partial prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TsType {
    /// `string`, `number`, `boolean`, `null`.
    Keyword {
        name: &'static str,
    },
    /// `value`: a JSON literal.
    Literal {
        value: String,
    },
    Array {
        element: Box<TsType>,
    },
    Union {
        members: Vec<TsType>,
    },
    Object {
        props: Vec<TsProp>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TsProp {
    pub key: String,
    pub optional: bool,
    pub ty: TsType,
}

/// A JSON (so TypeScript) string literal.
pub fn json_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// The update request's field that names the fields to remove. The IR has the unset type's
/// name but not this wire name; the reference fixes it (`unset`).
pub const UNSET_FIELD: &str = "unset";

/// A named validator of `validators.ts` and the TypeScript type inferred from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NamedType<'a> {
    Union(&'a str),
    Object(&'a str),
    TableFields(&'a str),
    Document(&'a str),
    Unset(&'a str),
    Update(&'a str),
    Filters(&'a str),
}

/// Resolves the names the IR uses to its items.
pub struct Types<'a> {
    pub component: &'a Component,
}

impl<'a> Types<'a> {
    pub fn new(component: &'a Component) -> Self {
        Types { component }
    }

    pub fn table(&self, rust_name: &str) -> Result<&'a Table, Error> {
        self.component
            .table(rust_name)
            .ok_or_else(|| Error::Ir(format!("unknown table `{rust_name}`")))
    }

    /// The TypeScript type name (`TaskExecution`, `TaskExecutionDoc`, `TaskExecutionUpdate`...).
    pub fn type_name(&self, named: NamedType<'_>) -> Result<String, Error> {
        Ok(match named {
            NamedType::Union(name) | NamedType::Object(name) | NamedType::TableFields(name) => {
                name.to_owned()
            }
            NamedType::Document(table) => format!("{table}Doc"),
            NamedType::Unset(table) => self.table(table)?.unset_type.clone(),
            NamedType::Update(table) => self.table(table)?.update_type.clone(),
            NamedType::Filters(table) => self.table(table)?.filters_type.clone(),
        })
    }

    /// `vTaskExecution`; `vPublicTaskExecution` for the variant with ids as strings.
    pub fn validator_name(&self, named: NamedType<'_>, public: bool) -> Result<String, Error> {
        let public = public && self.named_contains_id(named)?;
        let prefix = if public { "vPublic" } else { "v" };
        Ok(format!("{prefix}{}", self.type_name(named)?))
    }

    /// Fields of a named object-like type, in order.
    pub fn named_fields(&self, named: NamedType<'_>) -> Result<Vec<FieldShape>, Error> {
        Ok(match named {
            NamedType::Union(_) => Vec::new(),
            NamedType::Object(name) => self
                .component
                .object(name)
                .ok_or_else(|| Error::Ir(format!("unknown object `{name}`")))?
                .fields
                .iter()
                .map(FieldShape::from_field)
                .collect(),
            NamedType::TableFields(table) | NamedType::Document(table) => self
                .table(table)?
                .fields
                .iter()
                .map(FieldShape::from_field)
                .collect(),
            NamedType::Unset(table) => self
                .table(table)?
                .fields
                .iter()
                .filter(|field| field.update == UpdateMode::Unsettable)
                .map(|field| FieldShape {
                    wire: field.name.wire.clone(),
                    ty: TypeRef::Bool,
                    optional: true,
                    min: None,
                    max: None,
                })
                .collect(),
            NamedType::Update(table) => {
                let table_def = self.table(table)?;
                let mut fields: Vec<FieldShape> = table_def
                    .fields
                    .iter()
                    .filter(|field| field.update != UpdateMode::Immutable)
                    .map(|field| FieldShape {
                        optional: field.update != UpdateMode::Required,
                        ..FieldShape::from_field(field)
                    })
                    .collect();
                if table_def
                    .fields
                    .iter()
                    .any(|field| field.update == UpdateMode::Unsettable)
                {
                    fields.push(FieldShape {
                        wire: UNSET_FIELD.to_owned(),
                        ty: TypeRef::Unset {
                            table: table.to_owned(),
                        },
                        optional: true,
                        min: None,
                        max: None,
                    });
                }
                fields
            }
            NamedType::Filters(table) => self
                .table(table)?
                .fields
                .iter()
                .filter(|field| field.filter)
                .map(|field| FieldShape {
                    optional: true,
                    ..FieldShape::from_field(field)
                })
                .collect(),
        })
    }

    /// Whether a value of this type may hold a Convex id (which crosses the component boundary
    /// as a plain string, so the public API validates it with `v.string()`).
    pub fn contains_id(&self, ty: &TypeRef) -> Result<bool, Error> {
        Ok(match ty {
            TypeRef::Id { .. } => true,
            TypeRef::Nullable { inner } => self.contains_id(inner)?,
            TypeRef::Array { element } => self.contains_id(element)?,
            _ => match named_type(ty) {
                Some(named) => self.named_contains_id(named)?,
                None => false,
            },
        })
    }

    pub fn named_contains_id(&self, named: NamedType<'_>) -> Result<bool, Error> {
        if let NamedType::Document(_) = named {
            return Ok(true);
        }
        for field in self.named_fields(named)? {
            if self.contains_id(&field.ty)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The validator of `ty`.
    pub fn validator(&self, ty: &TypeRef, public: bool) -> Result<Validator, Error> {
        Ok(match ty {
            TypeRef::Null => Validator::Null,
            TypeRef::Bool => Validator::Boolean,
            TypeRef::String => Validator::String,
            TypeRef::Float64 | TypeRef::Integer { .. } => Validator::Number,
            TypeRef::Id { .. } if public => Validator::String,
            TypeRef::Id { table } => Validator::Id {
                table: self.table(table)?.wire_name.clone(),
            },
            TypeRef::Nullable { inner } => Validator::Union {
                members: vec![self.validator(inner, public)?, Validator::Null],
            },
            TypeRef::Array { element } => Validator::Array {
                element: Box::new(self.validator(element, public)?),
            },
            _ => match named_type(ty) {
                Some(named) => Validator::Named {
                    name: self.validator_name(named, public)?,
                },
                None => return Err(Error::Ir(format!("no validator for {ty:?}"))),
            },
        })
    }

    /// The validator of a field: `v.optional(...)` when it may be absent.
    pub fn field_validator(&self, field: &FieldShape, public: bool) -> Result<Validator, Error> {
        let inner = self.validator(&field.ty, public)?;
        Ok(if field.optional {
            Validator::Optional {
                inner: Box::new(inner),
            }
        } else {
            inner
        })
    }

    /// The type `npx convex codegen` writes for a value validated by `ty` in a component's API
    /// (ids are plain strings there).
    pub fn ts_type(&self, ty: &TypeRef) -> Result<TsType, Error> {
        let keyword = |name| TsType::Keyword { name };
        Ok(match ty {
            TypeRef::Null => keyword("null"),
            TypeRef::Bool => keyword("boolean"),
            TypeRef::String | TypeRef::Id { .. } => keyword("string"),
            TypeRef::Float64 | TypeRef::Integer { .. } => keyword("number"),
            TypeRef::Nullable { inner } => {
                let mut members = match self.ts_type(inner)? {
                    TsType::Union { members } => members,
                    other => vec![other],
                };
                members.push(keyword("null"));
                TsType::Union { members }
            }
            TypeRef::Array { element } => TsType::Array {
                element: Box::new(self.ts_type(element)?),
            },
            TypeRef::Union { name } => {
                let union = self
                    .component
                    .union(name)
                    .ok_or_else(|| Error::Ir(format!("unknown union `{name}`")))?;
                let mut members: Vec<TsType> = union
                    .variants
                    .iter()
                    .map(|variant| TsType::Literal {
                        value: json_string(&variant.name.wire),
                    })
                    .collect();
                if members.len() == 1 {
                    members.remove(0)
                } else {
                    TsType::Union { members }
                }
            }
            _ => {
                let named = named_type(ty)
                    .ok_or_else(|| Error::Ir(format!("no TypeScript type for {ty:?}")))?;
                let mut props = Vec::new();
                if let NamedType::Document(_) = named {
                    props.push(TsProp {
                        key: "_id".into(),
                        optional: false,
                        ty: keyword("string"),
                    });
                    props.push(TsProp {
                        key: "_creationTime".into(),
                        optional: false,
                        ty: keyword("number"),
                    });
                }
                for field in self.named_fields(named)? {
                    props.push(TsProp {
                        key: field.wire.clone(),
                        optional: field.optional,
                        ty: self.ts_type(&field.ty)?,
                    });
                }
                // `npx convex codegen` lists an object's fields sorted by name.
                props.sort_by(|a, b| a.key.cmp(&b.key));
                TsType::Object { props }
            }
        })
    }
}

/// A field as validators see it: wire name, type and whether it may be absent.
#[derive(Debug, Clone)]
pub struct FieldShape {
    pub wire: String,
    pub ty: TypeRef,
    pub optional: bool,
    /// Declared bounds of an integer field.
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl FieldShape {
    pub fn from_field(field: &Field) -> Self {
        FieldShape {
            wire: field.name.wire.clone(),
            ty: field.ty.clone(),
            optional: field.optional,
            min: field.min,
            max: field.max,
        }
    }
}

/// The named item a type refers to, if it refers to one.
pub fn named_type(ty: &TypeRef) -> Option<NamedType<'_>> {
    Some(match ty {
        TypeRef::Union { name } => NamedType::Union(name),
        TypeRef::Object { name } => NamedType::Object(name),
        TypeRef::TableFields { table } => NamedType::TableFields(table),
        TypeRef::Document { table } => NamedType::Document(table),
        TypeRef::Update { table } => NamedType::Update(table),
        TypeRef::Unset { table } => NamedType::Unset(table),
        TypeRef::Filters { table } => NamedType::Filters(table),
        _ => return None,
    })
}

/// Every named type `ty` mentions directly.
pub fn collect_named<'t>(ty: &'t TypeRef, out: &mut Vec<NamedType<'t>>) {
    match ty {
        TypeRef::Nullable { inner } => collect_named(inner, out),
        TypeRef::Array { element } => collect_named(element, out),
        _ => {
            if let Some(named) = named_type(ty) {
                out.push(named);
            }
        }
    }
}

/// `insertMany` → `InsertMany`.
pub fn operation_type_prefix(operation: &str) -> String {
    pascal_case(operation)
}

/// `updateByOCFPExpiresAt` → `UPDATE_BY_OCFP_EXPIRES_AT` (constants and env vars).
pub fn screaming_snake(name: &str) -> String {
    durable_execution_storage_convex_ir::names::snake_case(name).to_uppercase()
}
