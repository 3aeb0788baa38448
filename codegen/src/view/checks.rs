//! The view of `checks.ts`: where each value type holds numbers, and what they must be (an
//! integer type's range within ±(2^53 - 1) and the field's declared bounds, a float finite),
//! derived from the declaration's types; then the shape of each operation's arguments.

use serde::Serialize;

use durable_execution_storage_convex_ir::{
    Component, IntegerKind, Operation, TypeRef, MAX_SAFE_INTEGER,
};

use super::docs::{js_doc, Doc};
use super::types::{named_type, screaming_snake, FieldShape, NamedType, Types};
use super::validators::named_types_in_order;
use crate::error::Error;

#[derive(Debug, Default, Serialize)]
pub struct ChecksFile {
    pub shapes: Vec<ShapeConstant>,
}

/// `export const <name>: Fields = { ... }`: the fields of one type that hold numbers.
#[derive(Debug, Serialize)]
pub struct ShapeConstant {
    pub doc: Doc,
    pub name: String,
    pub fields: Vec<ShapeField>,
}

#[derive(Debug, Serialize)]
pub struct ShapeField {
    pub key: String,
    pub shape: Shape,
}

/// What the numbers of a value must be, as the `shape` partial prints it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// An integer in `[min, max]`; a bound at ±(2^53 - 1) is `safe_min`/`safe_max` (printed as
    /// `Number.MAX_SAFE_INTEGER`).
    Integer {
        min: i64,
        max: i64,
        safe_min: bool,
        safe_max: bool,
    },
    Finite,
    Array {
        element: Box<Shape>,
    },
    /// The fields of a named type, by their constant.
    Object {
        constant: String,
    },
}

fn constant(doc: Doc, name: &str, fields: Vec<ShapeField>) -> ShapeConstant {
    ShapeConstant {
        doc,
        name: name.to_owned(),
        fields,
    }
}

/// The numbers constant of a named type (`TASK_EXECUTION_UPDATE_NUMBERS`).
pub fn named_constant(types: &Types<'_>, named: NamedType<'_>) -> Result<String, Error> {
    Ok(format!(
        "{}_NUMBERS",
        screaming_snake(&types.type_name(named)?)
    ))
}

/// The numbers constant of an operation's arguments, when they hold numbers.
pub fn args_constant(operation: &Operation) -> String {
    format!("{}_ARGS_NUMBERS", screaming_snake(&operation.name))
}

pub fn build(component: &Component) -> Result<ChecksFile, Error> {
    let types = Types::new(component);
    let mut file = ChecksFile::default();
    for named in named_types_in_order(component)? {
        // A document is only ever returned, never checked.
        if let NamedType::Document(_) = named {
            continue;
        }
        let fields = types.named_fields(named)?;
        if let Some(props) = fields_object(&types, &fields)? {
            let doc = js_doc(
                &format!(
                    "The numbers in `{}` values and what they must be.",
                    types.type_name(named)?
                ),
                0,
            );
            file.shapes
                .push(constant(doc, &named_constant(&types, named)?, props));
        }
    }
    for operation in &component.operations {
        let fields: Vec<FieldShape> = operation.args.iter().map(FieldShape::from_field).collect();
        if let Some(props) = fields_object(&types, &fields)? {
            let doc = js_doc(
                &format!("The numbers in `{}`'s arguments.", operation.name),
                0,
            );
            file.shapes
                .push(constant(doc, &args_constant(operation), props));
        }
    }
    Ok(file)
}

/// Whether the arguments of `operation` hold numbers (so its function checks them).
pub fn args_have_numbers(component: &Component, operation: &Operation) -> Result<bool, Error> {
    let types = Types::new(component);
    let fields: Vec<FieldShape> = operation.args.iter().map(FieldShape::from_field).collect();
    Ok(fields_object(&types, &fields)?.is_some())
}

/// The `{ field: shape }` properties of the fields that hold numbers; `None` when none does.
fn fields_object(
    types: &Types<'_>,
    fields: &[FieldShape],
) -> Result<Option<Vec<ShapeField>>, Error> {
    let mut props = Vec::new();
    for field in fields {
        if let Some(shape) = shape(types, &field.ty, field.min, field.max)? {
            props.push(ShapeField {
                key: field.wire.clone(),
                shape,
            });
        }
    }
    Ok((!props.is_empty()).then_some(props))
}

/// What the numbers in a value of type `ty` must be, if it holds any.
fn shape(
    types: &Types<'_>,
    ty: &TypeRef,
    min: Option<i64>,
    max: Option<i64>,
) -> Result<Option<Shape>, Error> {
    Ok(match ty {
        TypeRef::Integer { rust } => Some(integer(*rust, min, max)),
        TypeRef::Float64 => Some(Shape::Finite),
        TypeRef::Nullable { inner } => shape(types, inner, None, None)?,
        TypeRef::Array { element } => {
            shape(types, element, None, None)?.map(|element| Shape::Array {
                element: Box::new(element),
            })
        }
        _ => match named_type(ty) {
            // A document is only ever returned, never checked.
            Some(NamedType::Document(_)) | None => None,
            Some(named) => {
                let fields = types.named_fields(named)?;
                if fields_object(types, &fields)?.is_some() {
                    Some(Shape::Object {
                        constant: named_constant(types, named)?,
                    })
                } else {
                    None
                }
            }
        },
    })
}

/// `integer(min, max)`: the Rust type's range on the wire, narrowed by the declared bounds.
fn integer(kind: IntegerKind, min: Option<i64>, max: Option<i64>) -> Shape {
    let (low, high) = kind.wire_range();
    let min = min.map_or(low, |min| min.max(low));
    let max = max.map_or(high, |max| max.min(high));
    Shape::Integer {
        min,
        max,
        safe_min: min == -MAX_SAFE_INTEGER,
        safe_max: max == MAX_SAFE_INTEGER,
    }
}
