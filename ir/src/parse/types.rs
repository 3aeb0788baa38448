//! Rust types of the declaration → [`TypeRef`].

use std::collections::BTreeMap;

use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type};

use crate::errors::Errors;
use crate::model::{IntegerKind, TypeRef};

/// What a type name declared in the module stands for.
#[derive(Debug, Clone)]
pub enum Named {
    Object,
    Union,
    Table,
    Update(String),
    Unset(String),
    Filters(String),
    /// An operation's argument struct: not usable as a field type.
    Operation,
}

/// The type names of the module, for resolution.
#[derive(Default)]
pub struct TypeNames {
    pub names: BTreeMap<String, Named>,
}

const SUPPORTED: &str = "supported: String, bool, f64, u8..u64, i8..i64, Option<T>, Vec<T>, \
Id<Table>, Doc<Table>, () (returns only), and the objects, unions and tables of this module";

impl TypeNames {
    /// A field's type: an outer `Option<T>` makes the field optional.
    pub fn resolve_field(&self, ty: &Type, errors: &mut Errors) -> Option<(TypeRef, bool)> {
        match option_inner(ty) {
            Some(inner) => self.resolve(inner, errors).map(|resolved| (resolved, true)),
            None => self.resolve(ty, errors).map(|resolved| (resolved, false)),
        }
    }

    pub fn resolve(&self, ty: &Type, errors: &mut Errors) -> Option<TypeRef> {
        let unsupported = |errors: &mut Errors, why: String| {
            // `new_spanned` underlines the whole type; `ty.span()` is only its first token on
            // stable.
            errors.push(syn::Error::new_spanned(ty, why));
            None
        };
        let path = match ty {
            Type::Tuple(tuple) if tuple.elems.is_empty() => return Some(TypeRef::Null),
            Type::Path(path) if path.qself.is_none() => &path.path,
            Type::Reference(_) => {
                return unsupported(
                    errors,
                    format!(
                        "references are not supported: use an owned type instead of `{}`",
                        ty.to_token_stream()
                    ),
                )
            }
            _ => {
                return unsupported(
                    errors,
                    format!("unsupported type `{}`; {SUPPORTED}", ty.to_token_stream()),
                )
            }
        };
        let Some(last) = path.segments.last() else {
            return unsupported(errors, format!("unsupported type; {SUPPORTED}"));
        };
        let name = last.ident.to_string();
        let argument = single_type_argument(&last.arguments);
        let has_arguments = !matches!(last.arguments, PathArguments::None);

        let resolved = match (name.as_str(), argument) {
            ("Option", Some(inner)) => TypeRef::Nullable {
                inner: Box::new(self.resolve(inner, errors)?),
            },
            ("Vec", Some(element)) => TypeRef::Array {
                element: Box::new(self.resolve(element, errors)?),
            },
            ("Id", Some(table)) => TypeRef::Id {
                table: self.table_argument(table, "Id", errors)?,
            },
            ("Doc", Some(table)) => TypeRef::Document {
                table: self.table_argument(table, "Doc", errors)?,
            },
            (_, Some(_)) => {
                return unsupported(
                    errors,
                    format!("unsupported type `{}`; {SUPPORTED}", ty.to_token_stream()),
                )
            }
            (_, None) if has_arguments => {
                return unsupported(
                    errors,
                    format!("unsupported type `{}`; {SUPPORTED}", ty.to_token_stream()),
                )
            }
            ("String", None) => TypeRef::String,
            ("bool", None) => TypeRef::Bool,
            ("f64", None) => TypeRef::Float64,
            ("f32", None) => {
                return unsupported(
                    errors,
                    "`f32` is not supported: Convex numbers are float64, use `f64`".to_owned(),
                )
            }
            ("u128" | "i128" | "usize" | "isize", None) => {
                return unsupported(
                    errors,
                    format!(
                        "`{name}` is not supported: Convex numbers are float64; use one of \
                         u8..u64 or i8..i64 (values are checked to fit 2^53)"
                    ),
                )
            }
            (integer, None) if IntegerKind::from_rust_name(integer).is_some() => TypeRef::Integer {
                rust: IntegerKind::from_rust_name(integer)?,
            },
            (declared, None) => match self.names.get(declared) {
                Some(Named::Object) => TypeRef::Object { name },
                Some(Named::Union) => TypeRef::Union { name },
                Some(Named::Table) => TypeRef::TableFields { table: name },
                Some(Named::Update(table)) => TypeRef::Update {
                    table: table.clone(),
                },
                Some(Named::Unset(table)) => TypeRef::Unset {
                    table: table.clone(),
                },
                Some(Named::Filters(table)) => TypeRef::Filters {
                    table: table.clone(),
                },
                Some(Named::Operation) => {
                    return unsupported(
                        errors,
                        format!(
                            "`{name}` is an operation's argument struct; declare a \
                             `#[convex(object)]` struct to nest it"
                        ),
                    )
                }
                None => return unsupported(errors, format!("unknown type `{name}`; {SUPPORTED}")),
            },
        };
        Some(resolved)
    }

    fn table_argument(&self, ty: &Type, wrapper: &str, errors: &mut Errors) -> Option<String> {
        let name = match ty {
            Type::Path(path) => path.path.get_ident().map(ToString::to_string),
            _ => None,
        };
        match name {
            Some(name) if matches!(self.names.get(&name), Some(Named::Table)) => Some(name),
            _ => {
                errors.push(syn::Error::new_spanned(
                    ty,
                    format!(
                        "`{wrapper}<T>` takes a table of this module, found `{}`",
                        ty.to_token_stream()
                    ),
                ));
                None
            }
        }
    }
}

/// `T` of `Option<T>`.
pub fn option_inner(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident == "Option" {
                single_type_argument(&last.arguments)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn single_type_argument(arguments: &PathArguments) -> Option<&Type> {
    match arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match args.args.first() {
            Some(GenericArgument::Type(ty)) => Some(ty),
            _ => None,
        },
        _ => None,
    }
}
